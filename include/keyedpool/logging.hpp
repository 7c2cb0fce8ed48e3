// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_LOGGING_HPP
#define KEYEDPOOL_LOGGING_HPP

/// \file
/// keyedpool logs through one spdlog logger named "keyedpool". Levels: `debug` for builds, closes
/// and evictions; `warn` for failed builds (with their code); `error` when a client's `close()`
/// throws. In the steady state (hits) nothing is logged, so the default `info` level is silent.

#include <spdlog/logger.h>

#include <memory>

namespace keyedpool {

/// The logger keyedpool uses. By default it is the logger registered in spdlog under "keyedpool"
/// if there is one, else a new stderr logger of that name at level `info`. Thread-safe.
std::shared_ptr<spdlog::logger> logger();

/// Replaces keyedpool's logger (e.g. with one writing to your sinks). Passing nullptr restores the
/// default. Thread-safe; operations already running may still log to the previous logger.
void set_logger(std::shared_ptr<spdlog::logger> new_logger);

}  // namespace keyedpool

#endif  // KEYEDPOOL_LOGGING_HPP
