// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/backoff.hpp>
#include <keyedpool/time_traits.hpp>

#include <algorithm>
#include <cmath>
#include <random>

namespace keyedpool {

double SteadyTimeTraits::jitter_sample() noexcept {
    thread_local std::minstd_rand engine{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

namespace detail {

std::chrono::steady_clock::duration backoff_delay(const BackoffOptions& options,
                                                  unsigned consecutive_failures, double sample) {
    using duration = std::chrono::steady_clock::duration;
    const double max = static_cast<double>(options.max.count());
    const double exponent = consecutive_failures > 0 ? consecutive_failures - 1.0 : 0.0;
    double delay = std::min(
        static_cast<double>(options.initial.count()) * std::pow(options.multiplier, exponent), max);
    if (options.jitter > 0.0 && delay > 0.0) {
        const double factor = 1.0 - options.jitter + 2.0 * options.jitter * sample;
        delay = std::min(delay * factor, max);
    }
    return duration(static_cast<duration::rep>(delay));
}

}  // namespace detail
}  // namespace keyedpool
