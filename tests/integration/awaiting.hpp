// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Small awaitable helpers the Redis integration tests share.
#ifndef KEYEDPOOL_TESTS_AWAITING_HPP
#define KEYEDPOOL_TESTS_AWAITING_HPP

#include <keyedpool/redis/connection.hpp>

#include <boost/asio.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace keyedpool::test {

inline boost::asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, d);
    co_await timer.async_wait(boost::asio::use_awaitable);
}

/// Waits (in 1 ms steps) until `condition()` holds; false if it did not within `limit`. For
/// conditions another component makes true (a reply, a counter), not for elapsed time.
template <typename Condition>
boost::asio::awaitable<bool> eventually(
    Condition condition, std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > until) {
            co_return false;
        }
        co_await sleep_for(std::chrono::milliseconds(1));
    }
    co_return true;
}

/// Connects to `config` on the calling coroutine's executor: the error, and the connection when
/// it worked.
inline boost::asio::awaitable<
    std::pair<boost::system::error_code, std::shared_ptr<redis::Connection>>>
try_connect(redis::ConnectionConfig config) {
    auto [ec, connection] = co_await redis::Connection::async_connect(
        co_await boost::asio::this_coro::executor, std::move(config),
        boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return std::pair{ec, std::move(connection)};
}

/// One command on a connection of its own (to look at the server beside the code under test).
inline boost::asio::awaitable<redis::Reply> one_command(redis::ConnectionConfig config,
                                                        std::vector<std::string> arguments) {
    auto c = co_await redis::Connection::async_connect(co_await boost::asio::this_coro::executor,
                                                       std::move(config));
    auto reply = co_await c->async_exec(std::move(arguments));
    c->close();
    co_return reply;
}

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_AWAITING_HPP
