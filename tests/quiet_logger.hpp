// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_TESTS_QUIET_LOGGER_HPP
#define KEYEDPOOL_TESTS_QUIET_LOGGER_HPP

#include <keyedpool/logging.hpp>

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace keyedpool::test {

/// Silences keyedpool's logger for a scope (failure paths log warnings by design). With
/// `KEYEDPOOL_TEST_LOG` set in the environment it logs everything instead (debugging a test).
class QuietLogger {
  public:
    QuietLogger() : level_(logger()->level()) {
        logger()->set_level(std::getenv("KEYEDPOOL_TEST_LOG") != nullptr ? spdlog::level::debug
                                                                         : spdlog::level::off);
    }
    ~QuietLogger() { logger()->set_level(level_); }
    QuietLogger(const QuietLogger&) = delete;
    QuietLogger& operator=(const QuietLogger&) = delete;

  private:
    spdlog::level::level_enum level_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_QUIET_LOGGER_HPP
