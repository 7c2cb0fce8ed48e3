// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/pool_options.hpp>

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace keyedpool {
namespace {

void require_non_negative(std::chrono::steady_clock::duration value, const char* field) {
    if (value < std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument(
            fmt::format("PoolOptions.{} must be >= 0, got {} ns", field, value.count()));
    }
}

}  // namespace

void validate(const PoolOptions& options) {
    require_non_negative(options.connect_timeout, "connect_timeout");
    require_non_negative(options.wait_timeout, "wait_timeout");
    require_non_negative(options.idle_timeout, "idle_timeout");
    require_non_negative(options.shutdown_timeout, "shutdown_timeout");
    require_non_negative(options.backoff.initial, "backoff.initial");
    if (options.backoff.max < options.backoff.initial) {
        throw std::invalid_argument(
            fmt::format("PoolOptions.backoff.max must be >= backoff.initial, got {} ns < {} ns",
                        options.backoff.max.count(), options.backoff.initial.count()));
    }
    if (!std::isfinite(options.backoff.multiplier) || options.backoff.multiplier < 1.0) {
        throw std::invalid_argument(
            fmt::format("PoolOptions.backoff.multiplier must be finite and >= 1, got {}",
                        options.backoff.multiplier));
    }
    if (!(options.backoff.jitter >= 0.0 && options.backoff.jitter <= 1.0)) {
        throw std::invalid_argument(fmt::format(
            "PoolOptions.backoff.jitter must be in [0, 1], got {}", options.backoff.jitter));
    }
}

}  // namespace keyedpool
