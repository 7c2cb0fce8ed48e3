// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_BACKOFF_HPP
#define KEYEDPOOL_DETAIL_BACKOFF_HPP

#include <keyedpool/pool_options.hpp>

#include <chrono>

namespace keyedpool::detail {

/// The delay before the next attempt after `consecutive_failures` (>= 1) failures in a row:
/// `min(initial * multiplier^(n-1), max)` scaled by a uniformly random factor in
/// `[1 - jitter, 1 + jitter]` (and clamped to `max` again). Thread-safe.
std::chrono::steady_clock::duration backoff_delay(const BackoffOptions& options,
                                                  unsigned consecutive_failures);

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_BACKOFF_HPP
