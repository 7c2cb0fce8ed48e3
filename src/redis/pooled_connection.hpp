// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A pooled connection, waited for no longer than a deadline.
#ifndef KEYEDPOOL_SRC_REDIS_POOLED_CONNECTION_HPP
#define KEYEDPOOL_SRC_REDIS_POOLED_CONNECTION_HPP

#include <keyedpool/result_code.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <utility>

namespace keyedpool::redis::detail {

/// `pool`'s client for `key`: the cached one at once, else waits for its build until `deadline`
/// (`ResultCode::timeout`; `operation_aborted` when the caller was cancelled). Call it from a
/// coroutine running on a strand: the build and the timer complete there, so the group's
/// cancellation of the loser never races the winner.
template <typename Pool, typename Key>
boost::asio::awaitable<std::pair<boost::system::error_code, typename Pool::client_ptr>>
pooled_connection(Pool& pool, const Key& key, std::chrono::steady_clock::time_point deadline) {
    namespace asio = boost::asio;
    using boost::system::error_code;
    if (auto cached = pool.try_get(key)) {
        co_return std::pair{error_code{}, std::move(cached)};
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
    auto [order, ec, built, timer_ec] =
        co_await asio::experimental::make_parallel_group(pool.async_get(key, asio::deferred),
                                                         timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    (void)timer_ec;
    const auto cancellation = co_await asio::this_coro::cancellation_state;
    if (cancellation.cancelled() != asio::cancellation_type::none) {
        co_return std::pair{error_code(asio::error::operation_aborted), nullptr};
    }
    if (order[0] == 1) {
        co_return std::pair{error_code(ResultCode::timeout), nullptr};
    }
    co_return std::pair{ec, std::move(built)};
}

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_POOLED_CONNECTION_HPP
