// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/pool_options.hpp>

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <string_view>

namespace keyedpool {
namespace {

void require_non_negative(std::chrono::steady_clock::duration value, const char* field) {
    if (value < std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument(
            fmt::format("PoolOptions.{} must be >= 0, got {} ns", field, value.count()));
    }
}

}  // namespace

void validate(const BackoffOptions& backoff, std::string_view field) {
    if (backoff.initial < std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument(
            fmt::format("{}.initial must be >= 0, got {} ns", field, backoff.initial.count()));
    }
    if (backoff.max < backoff.initial) {
        throw std::invalid_argument(fmt::format("{}.max must be >= {}.initial, got {} ns < {} ns",
                                                field, field, backoff.max.count(),
                                                backoff.initial.count()));
    }
    if (!std::isfinite(backoff.multiplier) || backoff.multiplier < 1.0) {
        throw std::invalid_argument(fmt::format("{}.multiplier must be finite and >= 1, got {}",
                                                field, backoff.multiplier));
    }
    if (!(backoff.jitter >= 0.0 && backoff.jitter <= 1.0)) {
        throw std::invalid_argument(
            fmt::format("{}.jitter must be in [0, 1], got {}", field, backoff.jitter));
    }
}

void validate(const PoolOptions& options) {
    require_non_negative(options.connect_timeout, "connect_timeout");
    require_non_negative(options.wait_timeout, "wait_timeout");
    require_non_negative(options.idle_timeout, "idle_timeout");
    require_non_negative(options.shutdown_timeout, "shutdown_timeout");
    validate(options.backoff, "PoolOptions.backoff");
}

}  // namespace keyedpool
