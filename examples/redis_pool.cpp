// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A KeyedClientPool of redis::Connection keyed by endpoint ("host:port"): every coroutine asking
// for an endpoint shares one pipelined connection; a connection that fails is replaced on the next
// get; shutdown closes each exactly once.
//
// Usage: redis_pool --redis-port N
#include <keyedpool/keyedpool.hpp>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include <cstdlib>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using keyedpool::redis::Connection;

int main(int argc, char** argv) {
    int port = 0;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) == "--redis-port") {
            port = std::atoi(argv[i + 1]);
        }
    }
    if (port <= 0) {
        fmt::print("redis_pool: needs --redis-port N (scripts/demo.sh starts a server); skipped\n");
        return 0;
    }
    asio::io_context io;
    keyedpool::PoolOptions options;
    options.connect_timeout = std::chrono::seconds(2);
    // The key is the endpoint; the factory parses it and connects.
    keyedpool::KeyedClientPool<std::string, Connection> pool(
        io.get_executor(),
        [&](const std::string& endpoint) {
            keyedpool::redis::ConnectionConfig config;
            config.host = endpoint.substr(0, endpoint.rfind(':'));
            config.port =
                static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
            return Connection::async_connect(io.get_executor(), config);
        },
        options);
    const std::string endpoint = fmt::format("127.0.0.1:{}", port);

    int done = 0;
    for (int i = 0; i < 100; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                auto redis = co_await pool.async_get(endpoint);  // one connect for all 100
                co_await redis->async_exec(keyedpool::redis::command("INCR", "demo:visits"));
                co_await redis->async_exec(
                    keyedpool::redis::command("SET", fmt::format("demo:user:{}", i), i));
                ++done;
            },
            asio::detached);
    }
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            while (done < 100) {
                asio::steady_timer tick(io, std::chrono::milliseconds(5));
                co_await tick.async_wait(asio::use_awaitable);
            }
            auto redis = co_await pool.async_get(endpoint);
            auto visits =
                co_await redis->async_exec(keyedpool::redis::command("GET", "demo:visits"));
            auto stats = pool.stats();
            fmt::print(
                "100 coroutines, {} connection(s) built, {} commands pipelined on it, visits={}\n",
                stats.builds, redis->commands_sent(), visits.text());
            co_await pool.async_shutdown();
            fmt::print("after shutdown: closes={} (every connection closed exactly once)\n",
                       pool.stats().closes);
        },
        asio::detached);
    io.run();
}
