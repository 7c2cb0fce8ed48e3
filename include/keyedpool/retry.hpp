// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_RETRY_HPP
#define KEYEDPOOL_RETRY_HPP

/// \file
/// `retry`: re-run an operation while it fails with a transient error (`is_transient`).

#include <keyedpool/detail/backoff.hpp>
#include <keyedpool/pool_options.hpp>
#include <keyedpool/result_code.hpp>
#include <keyedpool/time_traits.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <stdexcept>
#include <type_traits>

namespace keyedpool {

/// When `retry` tries again.
struct RetryPolicy {
    /// Attempts in all, the first included. Must be >= 1.
    unsigned max_attempts = 5;
    /// No attempt starts later than this after the first one. 0 = no overall deadline. >= 0.
    std::chrono::steady_clock::duration deadline = std::chrono::seconds(0);
    /// Delay before attempt n+1: `min(initial * multiplier^(n-1), max)` ± jitter.
    BackoffOptions backoff{std::chrono::milliseconds(20), std::chrono::seconds(2), 2.0, 0.2};
};

/// Throws `std::invalid_argument` naming the first invalid field.
inline void validate(const RetryPolicy& policy) {
    if (policy.max_attempts == 0) {
        throw std::invalid_argument("RetryPolicy.max_attempts must be >= 1");
    }
    if (policy.deadline < std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument("RetryPolicy.deadline must be >= 0");
    }
    validate(policy.backoff, "RetryPolicy.backoff");
}

/// Runs `op()` (returning `awaitable<error_code>`) until it succeeds, fails with an error that is
/// not transient, runs out of attempts, or would start past the deadline; returns the last error.
/// Waits between attempts with exponential backoff and jitter. Cancelling the calling coroutine
/// (terminal per-operation cancellation) stops the waiting: it returns `operation_aborted`.
///
/// Transient: `write_conflict`, `server_busy`, `timeout`, `io_error`, `lock_busy`, ... (see
/// `is_transient`). An `op` that throws `boost::system::system_error` is treated like one returning
/// its code; other exceptions propagate.
///
/// `Time` supplies the clock, the timer and the jitter (see `SteadyTimeTraits`; tests pass a
/// virtual clock).
///
/// \throws std::invalid_argument (when awaited) if `policy` is invalid; the message names the
///         field (e.g. "RetryPolicy.backoff.multiplier ...").
template <typename Time = SteadyTimeTraits, typename Op>
boost::asio::awaitable<boost::system::error_code> retry(RetryPolicy policy, Op op) {
    namespace asio = boost::asio;
    using clock = typename Time::clock_type;
    validate(policy);
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto start = clock::now();
    typename Time::timer_type pause(co_await asio::this_coro::executor);
    boost::system::error_code ec;
    for (unsigned attempt = 1;; ++attempt) {
        try {
            ec = co_await op();
        } catch (const boost::system::system_error& e) {
            ec = e.code();
        }
        if (!ec || !is_transient(ec) || attempt >= policy.max_attempts) {
            co_return ec;
        }
        const auto delay = detail::backoff_delay(policy.backoff, attempt, Time::jitter_sample());
        if (policy.deadline.count() > 0 && clock::now() + delay > start + policy.deadline) {
            co_return ec;
        }
        pause.expires_after(delay);
        auto [wait_ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        const auto cancellation = co_await asio::this_coro::cancellation_state;
        if (wait_ec || cancellation.cancelled() != asio::cancellation_type::none) {
            co_return asio::error::operation_aborted;
        }
    }
}

}  // namespace keyedpool

#endif  // KEYEDPOOL_RETRY_HPP
