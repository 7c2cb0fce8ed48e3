// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The README's usage example, compiled so it cannot rot.
#include <keyedpool/keyedpool.hpp>

#include <fmt/format.h>
#include <boost/asio.hpp>

#include <memory>
#include <string>

namespace asio = boost::asio;

struct Connection {  // your client: anything with optional is_connected() / close()
    std::string endpoint;
    bool is_connected() const { return true; }
    void close() {}
};

asio::awaitable<std::shared_ptr<Connection>> open_connection(const std::string& endpoint) {
    co_return std::make_shared<Connection>(Connection{endpoint});  // real code: async connect
}

int main() {
    asio::io_context io;
    keyedpool::PoolOptions options;
    options.connect_timeout = std::chrono::seconds(2);
    options.idle_timeout = std::chrono::minutes(5);
    keyedpool::KeyedClientPool<std::string, Connection> pool(io.get_executor(), open_connection,
                                                             options);

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            // Any number of coroutines may ask at once: one connect per endpoint.
            auto [ec, conn] =
                co_await pool.async_get("db-1:3000", asio::as_tuple(asio::use_awaitable));
            if (ec == keyedpool::ResultCode::backoff || keyedpool::is_transient(ec)) {
                fmt::print("try again later: {}\n", ec.message());
            } else if (!ec) {
                fmt::print("connected to {}\n", conn->endpoint);
            }
            co_await pool.async_shutdown();  // closes every client exactly once
        },
        asio::detached);
    io.run();
}
