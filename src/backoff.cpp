// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/backoff.hpp>

#include <algorithm>
#include <cmath>
#include <random>

namespace keyedpool::detail {

std::chrono::steady_clock::duration backoff_delay(const BackoffOptions& options,
                                                  unsigned consecutive_failures) {
    using duration = std::chrono::steady_clock::duration;
    const double max = static_cast<double>(options.max.count());
    const double exponent = consecutive_failures > 0 ? consecutive_failures - 1.0 : 0.0;
    double delay = std::min(
        static_cast<double>(options.initial.count()) * std::pow(options.multiplier, exponent), max);
    if (options.jitter > 0.0 && delay > 0.0) {
        thread_local std::minstd_rand engine{std::random_device{}()};
        std::uniform_real_distribution<double> spread(1.0 - options.jitter, 1.0 + options.jitter);
        delay = std::min(delay * spread(engine), max);
    }
    return duration(static_cast<duration::rep>(delay));
}

}  // namespace keyedpool::detail
