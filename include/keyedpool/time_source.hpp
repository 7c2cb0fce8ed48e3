// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_TIME_SOURCE_HPP
#define KEYEDPOOL_TIME_SOURCE_HPP

/// \file
/// `TimeSource`: a clock and its timers as an object, for the compiled parts of the library (the
/// lock services, `LockGuard`'s lease and watchdog). The pool, a template, takes the same choice
/// as `Time` traits (time_traits.hpp). The default is the steady clock; tests substitute a virtual
/// clock with `TimeSource::from_traits<Time>()`.

#include <keyedpool/time_traits.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <utility>

namespace keyedpool {

/// Where the lock services read the time and get their timers. Time points are
/// `std::chrono::steady_clock` ones whatever the source (a virtual clock's are mapped onto them by
/// their time since epoch). Thread safety: `now` and `make_timer` may be called from any thread; a
/// timer is used by one thread of control at a time, like an Asio timer.
class TimeSource {
  public:
    using clock = std::chrono::steady_clock;
    using duration = clock::duration;
    using time_point = clock::time_point;

    /// A waitable timer, as Asio's: one expiry, waits complete when it passes (success) or when
    /// the timer is cancelled, re-armed or destroyed (`operation_aborted`).
    class Timer {
      public:
        virtual ~Timer() = default;
        virtual void expires_at(time_point expiry) = 0;
        void expires_after(duration after);
        virtual void cancel() = 0;

        /// Handler signature: `void(boost::system::error_code)`. Supports per-operation
        /// cancellation (terminal, partial, total) when the underlying timer does.
        template <typename CompletionToken>
        auto async_wait(CompletionToken&& token) {
            return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
                [this](auto handler) { this->wait_erased(std::move(handler)); }, token);
        }

      protected:
        explicit Timer(const TimeSource& source) : source_(source) {}
        virtual void wait_erased(
            boost::asio::any_completion_handler<void(boost::system::error_code)> handler) = 0;

      private:
        const TimeSource& source_;
    };

    virtual ~TimeSource() = default;
    virtual time_point now() const = 0;
    /// A timer whose handlers run, by default, on `executor`. The source must outlive it.
    virtual std::unique_ptr<Timer> make_timer(
        const boost::asio::any_io_executor& executor) const = 0;

    /// The steady clock and `boost::asio::steady_timer` (one shared instance).
    static std::shared_ptr<const TimeSource> steady();

    /// A source backed by `Time` traits (a clock and a timer type; see `SteadyTimeTraits`).
    template <typename Time>
    static std::shared_ptr<const TimeSource> from_traits();
};

inline void TimeSource::Timer::expires_after(duration after) {
    expires_at(source_.now() + after);
}

namespace detail {

template <typename Time>
class TraitsTimeSource final : public TimeSource {
    using traits_clock = typename Time::clock_type;

    static time_point to_source(typename traits_clock::time_point t) {
        return time_point(std::chrono::duration_cast<duration>(t.time_since_epoch()));
    }
    static typename traits_clock::time_point to_traits(time_point t) {
        return typename traits_clock::time_point(
            std::chrono::duration_cast<typename traits_clock::duration>(t.time_since_epoch()));
    }

    class TraitsTimer final : public Timer {
      public:
        TraitsTimer(const TimeSource& source, const boost::asio::any_io_executor& executor)
            : Timer(source), timer_(executor) {}
        void expires_at(time_point expiry) override {
            timer_.expires_at(expiry == time_point::max() ? traits_clock::time_point::max()
                                                          : to_traits(expiry));
        }
        void cancel() override { timer_.cancel(); }

      private:
        void wait_erased(
            boost::asio::any_completion_handler<void(boost::system::error_code)> handler) override {
            timer_.async_wait(std::move(handler));
        }
        typename Time::timer_type timer_;
    };

  public:
    time_point now() const override { return to_source(traits_clock::now()); }
    std::unique_ptr<Timer> make_timer(const boost::asio::any_io_executor& executor) const override {
        return std::make_unique<TraitsTimer>(*this, executor);
    }
};

}  // namespace detail

template <typename Time>
std::shared_ptr<const TimeSource> TimeSource::from_traits() {
    return std::make_shared<detail::TraitsTimeSource<Time>>();
}

}  // namespace keyedpool

#endif  // KEYEDPOOL_TIME_SOURCE_HPP
