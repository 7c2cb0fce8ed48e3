// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_BACKOFF_HPP
#define KEYEDPOOL_DETAIL_BACKOFF_HPP

#include <keyedpool/pool_options.hpp>

#include <chrono>

namespace keyedpool::detail {

/// The delay before the next attempt after `consecutive_failures` (>= 1) failures in a row:
/// `min(initial * multiplier^(n-1), max)` scaled by `1 - jitter + 2 * jitter * sample` (and
/// clamped to `max` again). `sample` is in [0, 1): the caller's source of randomness (see
/// `SteadyTimeTraits::jitter_sample`), so the function itself is pure.
std::chrono::steady_clock::duration backoff_delay(const BackoffOptions& options,
                                                  unsigned consecutive_failures, double sample);

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_BACKOFF_HPP
