// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The same invariants on a 2-thread thread_pool (run under ThreadSanitizer in CI).
#include "fake_client.hpp"

#include <keyedpool/async_mutex.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/local_semaphore_service.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/permit_source.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <future>
#include <vector>

namespace keyedpool::test {
namespace {

using boost::system::error_code;

class ThreadedPoolTest : public ::testing::Test {
  protected:
    /// Waits (through the pool's threads, one handler at a time) until `count` reaches `n`.
    void wait_for(const std::atomic<int>& count, int n) {
        while (count.load() < n) {
            std::promise<void> tick;
            asio::post(threads_, [&] { tick.set_value(); });
            tick.get_future().get();
        }
    }

    /// 8 workers, each on a strand of its own, make 200 gets each over 16 keys: every 7th is
    /// cancelled soon after it starts (by a handler queued on its strand: Asio wants a
    /// cancellation emitted on the executor of the operation it cancels), every 3rd one served
    /// is invalidated and every 5th broken. `after_each` runs after each get. Returns once all are
    /// done; any error but `pool_exhausted` (counted in `exhausted`) and `operation_aborted` fails
    /// the test.
    template <typename AfterEach>
    void race_gets(Pool& pool, std::atomic<int>& served, std::atomic<int>& exhausted,
                   AfterEach after_each) {
        std::atomic<int> finished{0};
        for (int worker = 0; worker < 8; ++worker) {
            asio::co_spawn(
                asio::make_strand(threads_),
                [&, worker]() -> asio::awaitable<void> {
                    auto strand = co_await asio::this_coro::executor;
                    asio::steady_timer pause(strand);
                    for (int i = 0; i < 200; ++i) {
                        const int key = (worker * 5 + i) % 16;
                        asio::cancellation_signal cancel;
                        if (i % 7 == 0) {
                            asio::post(strand, [&cancel] {
                                cancel.emit(asio::cancellation_type::terminal);
                            });
                        }
                        auto [ec, client] = co_await pool.async_get(
                            key, asio::bind_cancellation_slot(
                                     i % 7 == 0 ? cancel.slot() : asio::cancellation_slot(),
                                     asio::as_tuple(asio::use_awaitable)));
                        if (i % 7 == 0) {
                            // The emit may still be queued: let it run before `cancel` goes.
                            pause.expires_after(1ms);
                            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                        }
                        if (!ec) {
                            served.fetch_add(1);
                            if (i % 3 == 0) {
                                pool.invalidate(key);
                            } else if (i % 5 == 0) {
                                client->break_connection();
                            }
                        } else if (ec == ResultCode::pool_exhausted) {
                            exhausted.fetch_add(1);
                        } else if (ec != asio::error::operation_aborted) {
                            ADD_FAILURE() << ec.message() << " " << ec.to_string();
                        }
                        after_each();
                    }
                    finished.fetch_add(1);
                },
                asio::detached);
        }
        wait_for(finished, 8);
    }

    QuietLogger quiet_;
    asio::thread_pool threads_{2};
    Counters counters_;
    FactoryBehaviour behaviour_;
};

TEST_F(ThreadedPoolTest, SingleFlightHoldsAcrossThreads) {
    Pool pool(threads_.get_executor(), make_factory(counters_, behaviour_));
    constexpr int keys = 20;
    constexpr int per_key = 200;
    std::vector<std::promise<ClientPtr>> results(keys * per_key);
    for (int i = 0; i < keys * per_key; ++i) {
        pool.async_get(i % keys, [&results, i](error_code ec, ClientPtr c) {
            if (ec) {
                results[i].set_exception(std::make_exception_ptr(boost::system::system_error(ec)));
            } else {
                results[i].set_value(std::move(c));
            }
        });
    }
    std::vector<ClientPtr> first(keys);
    for (int i = 0; i < keys * per_key; ++i) {
        auto client = results[i].get_future().get();
        ASSERT_NE(client, nullptr);
        ASSERT_EQ(client->key(), i % keys);
        if (!first[i % keys]) {
            first[i % keys] = client;
        }
        ASSERT_EQ(client, first[i % keys]) << "two clients for one key";
    }
    EXPECT_EQ(counters_.factory_calls.load(), keys);
    pool.async_shutdown(asio::use_future).get();
    EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
    EXPECT_EQ(counters_.double_closes.load(), 0);
    threads_.join();
    EXPECT_EQ(pool.open_flights(), 0u);
}

// Coroutines on both threads mixing hits, invalidations, unhealthy clients and shutdown: every
// client ever built is closed exactly once.
TEST_F(ThreadedPoolTest, ChurnClosesEveryClientExactlyOnce) {
    behaviour_.delay = 100us;
    PoolOptions options;
    options.idle_timeout = 2ms;
    options.max_clients = 8;
    options.wait_timeout = 5s;
    Pool pool(threads_.get_executor(), make_factory(counters_, behaviour_), options);
    std::atomic<int> finished{0};
    std::atomic<int> errors{0};
    for (int worker = 0; worker < 8; ++worker) {
        asio::co_spawn(
            threads_,
            [&, worker]() -> asio::awaitable<void> {
                for (int i = 0; i < 300; ++i) {
                    const int key = (worker * 7 + i) % 12;
                    auto [ec, client] =
                        co_await pool.async_get(key, asio::as_tuple(asio::use_awaitable));
                    if (ec) {
                        errors.fetch_add(1);
                        ADD_FAILURE() << ec.message() << " " << ec.to_string();
                        continue;
                    }
                    if (i % 17 == 0) {
                        client->break_connection();
                    }
                    if (i % 23 == 0) {
                        pool.invalidate(key);
                    }
                    (void)pool.try_get(key);
                }
                finished.fetch_add(1);
            },
            asio::detached);
    }
    wait_for(finished, 8);
    pool.async_shutdown(asio::use_future).get();
    threads_.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_GT(counters_.constructed.load(), 12);
    EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
    EXPECT_EQ(counters_.double_closes.load(), 0);
    const auto s = pool.stats();
    EXPECT_EQ(s.builds, s.closes);
    EXPECT_EQ(s.live_clients, 0u);
}

// max_clients far below the keys in use: builds queue for permits while their wait_timeout runs
// out, permits free on both threads (invalidate, replacing broken clients), gets are cancelled. The
// permit hand-over, its timeout and an abandonment may land in any order on either thread; every
// get completes, every client is closed once, and no permit leaks (ASan/TSan: no race on a wait's
// cancellation handler).
TEST_F(ThreadedPoolTest, PermitWaitsTimeoutsAndCancellationsRaceSafely) {
    behaviour_.delay = 50us;
    PoolOptions options;
    options.max_clients = 2;
    options.wait_timeout = 200us;
    options.backoff.initial = 0s;  // pool_exhausted sets no backoff anyway; keep keys rebuildable
    Pool pool(threads_.get_executor(), make_factory(counters_, behaviour_), options);
    std::atomic<int> served{0};
    std::atomic<int> exhausted{0};
    race_gets(pool, served, exhausted, [] {});
    pool.async_shutdown(asio::use_future).get();  // throws on an error
    threads_.join();
    EXPECT_GT(served.load(), 0);
    EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
    EXPECT_EQ(counters_.double_closes.load(), 0);
    const auto s = pool.stats();
    EXPECT_EQ(s.builds, s.closes);
    EXPECT_EQ(s.live_clients, 0u);
    EXPECT_EQ(s.builds_in_progress, 0u);
}

TEST_F(ThreadedPoolTest, DestroyWhileBusyIsSafe) {
    behaviour_.delay = 5ms;
    auto pool =
        std::make_unique<Pool>(threads_.get_executor(), make_factory(counters_, behaviour_));
    std::atomic<int> completed{0};
    for (int i = 0; i < 500; ++i) {
        pool->async_get(i % 50, [&](error_code, ClientPtr) { completed.fetch_add(1); });
    }
    pool.reset();
    threads_.join();
    EXPECT_EQ(completed.load(), 500);
    EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
}

TEST(ThreadedMutex, AsyncMutexSerialisesAcrossThreads) {
    asio::thread_pool threads(2);
    AsyncMutex mutex(threads.get_executor());
    long counter = 0;  // deliberately not atomic: the mutex protects it
    for (int worker = 0; worker < 4; ++worker) {
        asio::co_spawn(
            threads,
            [&]() -> asio::awaitable<void> {
                for (int i = 0; i < 2'000; ++i) {
                    auto guard = co_await mutex.async_scoped_lock();
                    ++counter;
                }
            },
            asio::detached);
    }
    threads.join();
    EXPECT_EQ(counter, 8'000);
}

TEST(ThreadedMutex, KeyedMutexSerialisesPerKeyAcrossThreads) {
    asio::thread_pool threads(2);
    KeyedMutex<int> mutex(threads.get_executor());
    std::array<long, 4> counters{};
    for (int worker = 0; worker < 8; ++worker) {
        asio::co_spawn(
            threads,
            [&, worker]() -> asio::awaitable<void> {
                for (int i = 0; i < 1'000; ++i) {
                    const int key = (worker + i) % 4;
                    auto guard = co_await mutex.async_lock(key);
                    ++counters[key];
                }
            },
            asio::detached);
    }
    threads.join();
    EXPECT_EQ(counters[0] + counters[1] + counters[2] + counters[3], 8'000);
    EXPECT_EQ(mutex.size(), 0u);
}

// The same races with a permit source instead of max_clients: fleet permits taken by builds on
// both threads, given back by invalidations, replacements of broken clients and cancelled builds.
// Every client is closed once and, after shutdown, no permit is held.
TEST_F(ThreadedPoolTest, FleetPermitsAreTakenAndGivenBackSafelyAcrossThreads) {
    behaviour_.delay = 50us;
    auto budget = std::make_shared<LocalSemaphoreService>(threads_.get_executor());
    PermitSource<int> permits;
    permits.service = budget;
    permits.permit_for = [](const int& key) {
        return ClientPermit{"db", 3, static_cast<std::size_t>(key % 2 + 1)};
    };
    PoolOptions options;
    options.wait_timeout = 2ms;
    options.backoff.initial = 0s;
    Pool pool(threads_.get_executor(), make_factory(counters_, behaviour_), options, permits);
    std::atomic<int> served{0};
    std::atomic<int> exhausted{0};
    race_gets(pool, served, exhausted, [&] { EXPECT_LE(budget->in_use("db"), 3u); });
    pool.async_shutdown(asio::use_future).get();
    threads_.join();  // the permits' background releases are work on the pool: done by now
    EXPECT_GT(served.load(), 0);
    EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
    EXPECT_EQ(budget->in_use("db"), 0u) << "a permit outlived its client";
    EXPECT_EQ(budget->resources(), 0u);
}

// Weighted permits across threads: at no moment more than the limit held (holders of 2 count
// twice), every acquisition served, nothing left behind.
TEST(ThreadedSemaphore, PermitsNeverExceedTheLimitAcrossThreads) {
    asio::thread_pool threads(2);
    LocalSemaphoreService service(threads.get_executor());
    std::atomic<int> held{0};
    std::atomic<int> most{0};
    std::atomic<int> served{0};
    for (int worker = 0; worker < 8; ++worker) {
        asio::co_spawn(
            threads,
            [&, worker]() -> asio::awaitable<void> {
                SemaphoreOptions options;
                options.limit = 3;
                options.permits = worker % 3 == 0 ? 2 : 1;
                options.wait = std::chrono::seconds(60);
                for (int i = 0; i < 200; ++i) {
                    auto guard = co_await service.async_acquire("db", options);
                    const int now = held.fetch_add(static_cast<int>(guard.permits())) +
                                    static_cast<int>(guard.permits());
                    int seen = most.load();
                    while (now > seen && !most.compare_exchange_weak(seen, now)) {
                    }
                    held.fetch_sub(static_cast<int>(guard.permits()));
                    ++served;
                    co_await guard.async_release();
                }
            },
            asio::detached);
    }
    threads.join();
    EXPECT_EQ(served.load(), 8 * 200);
    EXPECT_LE(most.load(), 3) << "more permits than the limit were held at once";
    EXPECT_EQ(service.resources(), 0u);
}

}  // namespace
}  // namespace keyedpool::test
