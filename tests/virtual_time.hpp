// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Virtual time for tests: a clock that stands still until the test advances it, and timers that
// fire only then. A test drives an interleaving by stepping time and running the io_context until
// it is idle, never by waiting for a real duration.
#ifndef KEYEDPOOL_TESTS_VIRTUAL_TIME_HPP
#define KEYEDPOOL_TESTS_VIRTUAL_TIME_HPP

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

namespace keyedpool::test {

/// A clock that moves only when `VirtualTime::advance` moves it. Starts at 1,000 s.
struct VirtualClock {
    using duration = std::chrono::steady_clock::duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<VirtualClock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
};

/// An Asio-like waitable timer on `VirtualClock`. Its waits complete (posted to the timer's
/// executor, then dispatched to the handler's) when virtual time reaches their expiry, when the
/// timer is cancelled or re-armed (`operation_aborted`), or when their per-operation cancellation
/// is emitted. A pending wait does not count as work of its executor: `io_context::run()` returns
/// while only virtual timers are pending (tests run `poll()` loops and advance time instead).
class VirtualTimer {
  public:
    using clock_type = VirtualClock;
    using duration = VirtualClock::duration;
    using time_point = VirtualClock::time_point;
    using executor_type = boost::asio::any_io_executor;

    explicit VirtualTimer(executor_type executor) : executor_(std::move(executor)) {}
    VirtualTimer(executor_type executor, time_point expiry)
        : executor_(std::move(executor)), expiry_(expiry) {}
    VirtualTimer(executor_type executor, duration after)
        : executor_(std::move(executor)), expiry_(VirtualClock::now() + after) {}
    VirtualTimer(const VirtualTimer&) = delete;
    VirtualTimer& operator=(const VirtualTimer&) = delete;
    ~VirtualTimer() { cancel(); }

    executor_type get_executor() const { return executor_; }
    time_point expiry() const { return expiry_; }

    std::size_t expires_at(time_point expiry) {
        const auto cancelled = cancel();
        expiry_ = expiry;
        return cancelled;
    }
    std::size_t expires_after(duration after) { return expires_at(VirtualClock::now() + after); }

    /// Completes every pending wait with `operation_aborted`; returns how many.
    std::size_t cancel();

    template <typename CompletionToken>
    auto async_wait(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) {
                boost::asio::any_completion_executor executor(
                    boost::asio::get_associated_executor(handler, executor_));
                // The type-erased handler connects to the caller's slot itself and offers a slot of
                // its own: that is where this wait's cancellation goes.
                Handler erased(std::move(handler));
                auto slot = erased.get_cancellation_slot();
                const std::uint64_t id = schedule(expiry_, std::move(erased), std::move(executor));
                if (slot.is_connected()) {
                    slot.assign([id](boost::asio::cancellation_type type) {
                        if (type != boost::asio::cancellation_type::none) {
                            complete(id, boost::asio::error::operation_aborted);
                        }
                    });
                }
            },
            token);
    }

  private:
    using Handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;
    std::uint64_t schedule(time_point expiry, Handler handler,
                           boost::asio::any_completion_executor executor);
    static void complete(std::uint64_t id, boost::system::error_code ec);

    executor_type executor_;
    time_point expiry_{};

    friend class VirtualTime;
};

/// The virtual time line shared by every `VirtualClock` and `VirtualTimer` of the process.
/// Thread-safe, but meant for tests that run one io_context on the test's thread.
class VirtualTime {
  public:
    using duration = VirtualClock::duration;
    using time_point = VirtualClock::time_point;

    static time_point now() noexcept {
        std::lock_guard lock(mutex());
        return state().now;
    }

    /// Back to the start, with no timer pending (call between tests, after their io_context has
    /// been drained: a wait still pending is dropped unfinished).
    static void reset() {
        State old;
        {
            std::lock_guard lock(mutex());
            std::swap(old, state());
        }
    }  // `old`'s handlers are destroyed here, outside the lock (they may own timers)

    /// Advances to each pending expiry in turn until no timer is pending (at most `limit` of
    /// virtual time), settling after each. Returns whether none is pending.
    static bool drain(duration limit, const std::function<void()>& settle) {
        const time_point end = now() + limit;
        settle();
        while (pending() != 0 && next_expiry() <= end) {
            advance(next_expiry() - now(), settle);
        }
        return pending() == 0;
    }

    /// Moves time forward by `step` in stages: first runs what is ready now (`settle()`: run the
    /// io_context until idle), then moves to each pending expiry in order, firing the timers due
    /// then and settling before the next, so work a timer's handler starts sees the time it would
    /// see in reality. Ends exactly at now + step.
    static void advance(duration step, const std::function<void()>& settle) {
        const time_point target = now() + step;
        settle();  // what is ready now happens now, before time moves
        for (;;) {
            std::vector<Wait> due;
            {
                std::lock_guard lock(mutex());
                State& s = state();
                time_point next = target;
                if (!s.waits.empty() && s.waits.begin()->first.first < target) {
                    next = s.waits.begin()->first.first;
                }
                if (next > s.now) {
                    s.now = next;
                }
                while (!s.waits.empty() && s.waits.begin()->first.first <= s.now) {
                    auto node = s.waits.extract(s.waits.begin());
                    due.push_back(std::move(node.mapped()));
                }
            }
            for (auto& w : due) {
                post_completion(w.timer, std::move(w.handler), std::move(w.executor), {});
            }
            settle();
            std::lock_guard lock(mutex());
            const State& s = state();
            if (s.now >= target && (s.waits.empty() || s.waits.begin()->first.first > s.now)) {
                return;
            }
        }
    }

    /// Number of timer waits pending.
    static std::size_t pending() {
        std::lock_guard lock(mutex());
        return state().waits.size();
    }

    /// The earliest pending expiry, or `time_point::max()`.
    static time_point next_expiry() {
        std::lock_guard lock(mutex());
        const State& s = state();
        return s.waits.empty() ? time_point::max() : s.waits.begin()->first.first;
    }

  private:
    using Handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;
    struct Wait {
        const VirtualTimer* timer;
        Handler handler;
        boost::asio::any_completion_executor executor;  // the handler's
    };

    /// How a wait completes, as an Asio timer does: posted to the timer's executor (never inline,
    /// counted as work), then dispatched to the handler's.
    struct State {
        time_point now = time_point(std::chrono::seconds(1000));
        std::uint64_t next_id = 1;
        // (expiry, id) → wait: expiry order, then the order waits were started.
        std::map<std::pair<time_point, std::uint64_t>, Wait> waits;
    };

    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    static State& state() {
        static State s;
        return s;
    }

    static void post_completion(const VirtualTimer* timer, Handler handler,
                                boost::asio::any_completion_executor executor,
                                boost::system::error_code ec) {
        boost::asio::post(timer->executor_, [handler = std::move(handler),
                                             executor = std::move(executor), ec]() mutable {
            boost::asio::dispatch(executor, [handler = std::move(handler), ec]() mutable {
                boost::asio::get_associated_cancellation_slot(handler).clear();
                std::move(handler)(ec);
            });
        });
    }

    /// Registers a wait; a wait whose expiry has passed completes at once (posted).
    static std::uint64_t schedule(const VirtualTimer* timer, time_point expiry, Handler handler,
                                  boost::asio::any_completion_executor executor) {
        std::unique_lock lock(mutex());
        State& s = state();
        const std::uint64_t id = s.next_id++;
        if (expiry <= s.now) {
            lock.unlock();
            post_completion(timer, std::move(handler), std::move(executor), {});
            return id;
        }
        s.waits.emplace(std::pair{expiry, id},
                        Wait{timer, std::move(handler), std::move(executor)});
        return id;
    }

    static std::size_t cancel(const VirtualTimer* timer) {
        std::vector<Wait> cancelled;
        {
            std::lock_guard lock(mutex());
            auto& waits = state().waits;
            for (auto it = waits.begin(); it != waits.end();) {
                if (it->second.timer == timer) {
                    cancelled.push_back(std::move(it->second));
                    it = waits.erase(it);
                } else {
                    ++it;
                }
            }
        }
        for (auto& w : cancelled) {
            post_completion(w.timer, std::move(w.handler), std::move(w.executor),
                            boost::asio::error::operation_aborted);
        }
        return cancelled.size();
    }

    static void complete(std::uint64_t id, boost::system::error_code ec) {
        std::vector<Wait> found;
        {
            std::lock_guard lock(mutex());
            auto& waits = state().waits;
            for (auto it = waits.begin(); it != waits.end(); ++it) {
                if (it->first.second == id) {
                    found.push_back(std::move(it->second));
                    waits.erase(it);
                    break;
                }
            }
        }
        for (auto& w : found) {
            post_completion(w.timer, std::move(w.handler), std::move(w.executor), ec);
        }
    }

    friend struct VirtualClock;
    friend class VirtualTimer;
};

inline VirtualClock::time_point VirtualClock::now() noexcept {
    return VirtualTime::now();
}

inline std::size_t VirtualTimer::cancel() {
    return VirtualTime::cancel(this);
}

inline std::uint64_t VirtualTimer::schedule(time_point expiry, Handler handler,
                                            boost::asio::any_completion_executor executor) {
    return VirtualTime::schedule(this, expiry, std::move(handler), std::move(executor));
}

inline void VirtualTimer::complete(std::uint64_t id, boost::system::error_code ec) {
    VirtualTime::complete(id, ec);
}

/// Jitter from a test: a fixed sample unless a test sets another.
struct FixedJitter {
    static double& sample() {
        static double s = 0.5;
        return s;
    }
};

/// `Time` traits for the pool: virtual clock and timers, jitter under the test's control.
struct VirtualTimeTraits {
    using clock_type = VirtualClock;
    using timer_type = VirtualTimer;
    static double jitter_sample() noexcept { return FixedJitter::sample(); }
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_VIRTUAL_TIME_HPP
