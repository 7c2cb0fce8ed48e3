// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Shared by the lock examples: a RedisLockService when a server answers at
// --redis-url URL (redis://, rediss://, unix://, redis-sentinel://) or --redis-port N, else the
// in-process LocalLockService (same API), with a clear message saying which.
#ifndef KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP
#define KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/url.hpp>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>

inline boost::asio::awaitable<std::unique_ptr<keyedpool::LockService>> make_lock_service(
    int argc, char** argv) {
    namespace asio = boost::asio;
    auto executor = co_await asio::this_coro::executor;
    std::string url;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) == "--redis-port") {
            url = std::string("redis://127.0.0.1:") + argv[i + 1];
        } else if (std::string_view(argv[i]) == "--redis-url") {
            url = argv[i + 1];
        }
    }
    if (!url.empty()) {
        keyedpool::redis::ConnectionConfig defaults;
        defaults.connect_timeout = std::chrono::seconds(2);
        keyedpool::redis::ConnectionConfig config;
        boost::system::error_code ec;
        std::shared_ptr<keyedpool::redis::Connection> probe;
        try {
            config = keyedpool::redis::parse_url(url, defaults);
            std::tie(ec, probe) = co_await keyedpool::redis::Connection::async_connect(
                executor, config, asio::as_tuple(asio::use_awaitable));
        } catch (const std::invalid_argument& e) {
            ec = keyedpool::ResultCode::invalid_argument;
            fmt::print("lock backend: {}\n", e.what());  // names the part, never the password
        }
        if (!ec) {
            const auto at = probe->endpoint();
            probe->close();
            fmt::print("lock backend: Redis at {}{}\n", at.host,
                       at.port ? fmt::format(":{}", at.port) : "");
            keyedpool::redis::RedisLockServiceOptions options;
            options.connection = config;
            co_return std::make_unique<keyedpool::redis::RedisLockService>(executor, options);
        }
        fmt::print("lock backend: no Redis there ({}); ", ec.message());
    } else {
        fmt::print("lock backend: no --redis-url or --redis-port given; ");
    }
    fmt::print("using LocalLockService (in-process, same API; locks do not span processes)\n");
    co_return std::make_unique<keyedpool::LocalLockService>(executor);
}

#endif  // KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP
