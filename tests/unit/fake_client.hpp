// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A fake client for pool tests: counts constructions and closes, can be made
// unhealthy, and remembers a double close (which the pool must never do).
#ifndef KEYEDPOOL_TESTS_FAKE_CLIENT_HPP
#define KEYEDPOOL_TESTS_FAKE_CLIENT_HPP

#include <keyedpool/keyed_client_pool.hpp>
#include "quiet_logger.hpp"
#include "virtual_time.hpp"

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>

namespace keyedpool::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Counters {
    std::atomic<int> factory_calls{0};
    std::atomic<int> constructed{0};
    std::atomic<int> closed{0};
    std::atomic<int> double_closes{0};
    std::atomic<int> factory_cancelled{0};
    std::atomic<int> in_flight{0};
    std::atomic<int> max_in_flight{0};
};

class FakeClient {
  public:
    FakeClient(int key, int serial, Counters& counters)
        : key_(key), serial_(serial), counters_(counters) {
        counters_.constructed.fetch_add(1);
    }
    int key() const { return key_; }
    int serial() const { return serial_; }
    bool is_connected() const { return healthy_.load(); }
    void break_connection() { healthy_.store(false); }
    bool closed() const { return close_calls_.load() > 0; }
    void close() {
        if (close_calls_.fetch_add(1) == 0) {
            counters_.closed.fetch_add(1);
        } else {
            counters_.double_closes.fetch_add(1);
        }
        healthy_.store(false);
    }

  private:
    int key_;
    int serial_;
    Counters& counters_;
    std::atomic<bool> healthy_{true};
    std::atomic<int> close_calls_{0};
};

/// A pool of fake clients on real time (multi-threaded tests).
using Pool = KeyedClientPool<int, FakeClient>;
/// The same on virtual time (single-threaded tests that step time).
using VirtualPool = KeyedClientPool<int, FakeClient, ClientTraits<FakeClient>, std::hash<int>,
                                    std::equal_to<int>, VirtualTimeTraits>;
using ClientPtr = std::shared_ptr<FakeClient>;
using Factory = std::function<asio::awaitable<ClientPtr>(const int&)>;

/// What the fake factory does on its next calls. Set before running the io_context.
struct FactoryBehaviour {
    std::chrono::steady_clock::duration delay = 1ms;
    enum class Outcome {
        client,
        unhealthy_client,
        system_error,
        runtime_error,
        null
    } outcome = Outcome::client;
    boost::system::error_code error = ResultCode::forbidden;
    bool ignore_cancellation = false;  // keeps building after being cancelled (a rude factory)
};

/// A factory that waits `delay` on a `Timer` (honouring cancellation unless told not to), then
/// produces a FakeClient or fails as configured.
template <typename Timer = asio::steady_timer>
Factory make_factory(Counters& counters, FactoryBehaviour& behaviour) {
    return [&counters, &behaviour](const int& key) -> asio::awaitable<ClientPtr> {
        const int serial = counters.factory_calls.fetch_add(1) + 1;
        const int now_in_flight = counters.in_flight.fetch_add(1) + 1;
        int seen = counters.max_in_flight.load();
        while (seen < now_in_flight &&
               !counters.max_in_flight.compare_exchange_weak(seen, now_in_flight)) {
        }
        struct InFlight {
            Counters& c;
            ~InFlight() { c.in_flight.fetch_sub(1); }
        } in_flight{counters};

        if (behaviour.ignore_cancellation) {
            co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
        }
        Timer timer(co_await asio::this_coro::executor, behaviour.delay);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            counters.factory_cancelled.fetch_add(1);
            throw boost::system::system_error(ec);
        }
        switch (behaviour.outcome) {
            case FactoryBehaviour::Outcome::client:
                co_return std::make_shared<FakeClient>(key, serial, counters);
            case FactoryBehaviour::Outcome::unhealthy_client: {
                auto client = std::make_shared<FakeClient>(key, serial, counters);
                client->break_connection();
                co_return client;
            }
            case FactoryBehaviour::Outcome::system_error:
                throw boost::system::system_error(behaviour.error);
            case FactoryBehaviour::Outcome::runtime_error:
                throw std::runtime_error("FailForbidden: the message text must not matter");
            case FactoryBehaviour::Outcome::null:
                co_return nullptr;
        }
        co_return nullptr;
    };
}

/// The outcome of one get, filled in by its completion.
struct GetOutcome {
    bool done = false;
    boost::system::error_code ec;
    ClientPtr client;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_FAKE_CLIENT_HPP
