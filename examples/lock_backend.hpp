// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Shared by the lock examples: a RedisLockService when a server answers on
// --redis-port, else the in-process LocalLockService (same API), with a clear message saying which.
#ifndef KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP
#define KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include <cstdlib>
#include <memory>
#include <string_view>

inline boost::asio::awaitable<std::unique_ptr<keyedpool::LockService>> make_lock_service(
    int argc, char** argv) {
    namespace asio = boost::asio;
    auto executor = co_await asio::this_coro::executor;
    int port = 0;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) == "--redis-port") {
            port = std::atoi(argv[i + 1]);
        }
    }
    if (port > 0) {
        keyedpool::redis::ConnectionConfig config;
        config.port = static_cast<std::uint16_t>(port);
        config.connect_timeout = std::chrono::seconds(2);
        auto [ec, probe] = co_await keyedpool::redis::Connection::async_connect(
            executor, config, asio::as_tuple(asio::use_awaitable));
        if (!ec) {
            probe->close();
            fmt::print("lock backend: Redis at 127.0.0.1:{}\n", port);
            keyedpool::redis::RedisLockServiceOptions options;
            options.connection = config;
            co_return std::make_unique<keyedpool::redis::RedisLockService>(executor, options);
        }
        fmt::print("lock backend: no Redis at 127.0.0.1:{} ({}); ", port, ec.message());
    } else {
        fmt::print("lock backend: no --redis-port given; ");
    }
    fmt::print("using LocalLockService (in-process, same API; locks do not span processes)\n");
    co_return std::make_unique<keyedpool::LocalLockService>(executor);
}

#endif  // KEYEDPOOL_EXAMPLES_LOCK_BACKEND_HPP
