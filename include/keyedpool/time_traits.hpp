// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_TIME_TRAITS_HPP
#define KEYEDPOOL_TIME_TRAITS_HPP

/// \file
/// Where `KeyedClientPool` takes time from: its clock, its timers and the randomness of its
/// backoff jitter. The default is the real steady clock; tests substitute a virtual clock whose
/// timers fire when the test advances time, so every interleaving is driven, never waited for.

#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace keyedpool {

/// The default time traits: `std::chrono::steady_clock` and `boost::asio::steady_timer`.
///
/// Requirements on a custom `Time` traits type (a test clock, say):
/// - `clock_type`: a clock with `static time_point now()` whose `duration` is
///   `std::chrono::steady_clock::duration` (the options' durations are in that unit).
/// - `timer_type`: constructible from an executor; `expires_after(duration)`,
///   `expires_at(time_point)`, `cancel()`, and `async_wait(token)` with signature
///   `void(boost::system::error_code)`, completing with `operation_aborted` when cancelled, like
///   `boost::asio::basic_waitable_timer`.
/// - `static double jitter_sample()`: a number in [0, 1), thread-safe; the backoff's random
///   spread is taken from it.
struct SteadyTimeTraits {
    using clock_type = std::chrono::steady_clock;
    using timer_type = boost::asio::steady_timer;

    /// Uniformly distributed in [0, 1); a generator per thread, seeded from `std::random_device`.
    static double jitter_sample() noexcept;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_TIME_TRAITS_HPP
