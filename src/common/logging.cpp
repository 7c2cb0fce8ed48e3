// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/logging.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>

namespace keyedpool {
namespace {

std::mutex logger_mutex;
std::shared_ptr<spdlog::logger> current_logger;  // guarded by logger_mutex

std::shared_ptr<spdlog::logger> make_default_logger() {
    if (auto registered = spdlog::get("keyedpool")) {
        return registered;
    }
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto made = std::make_shared<spdlog::logger>("keyedpool", std::move(sink));
    made->set_level(spdlog::level::info);
    return made;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
    std::lock_guard lock(logger_mutex);
    if (!current_logger) {
        current_logger = make_default_logger();
    }
    return current_logger;
}

void set_logger(std::shared_ptr<spdlog::logger> new_logger) {
    std::lock_guard lock(logger_mutex);
    current_logger = std::move(new_logger);
}

}  // namespace keyedpool
