// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_SENTINEL_HPP
#define KEYEDPOOL_SRC_REDIS_SENTINEL_HPP

/// \file
/// Talking to Redis Sentinel: which node is the primary, its configuration epoch, and the
/// `+switch-master` messages that say it moved. `Connection::async_connect` uses these.

#include <keyedpool/redis/connection.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace keyedpool::redis::detail {

/// A sentinel that named the primary, and the connection to it (kept to confirm the epoch and
/// to watch for switches).
struct SentinelAnswer {
    std::shared_ptr<Connection> sentinel;
    Endpoint primary;
};

/// Asks the sentinel `config.sentinel.sentinels[index]` which node is the primary, before
/// `deadline`. Empty (the reason logged) when it cannot be reached or does not know the name.
boost::asio::awaitable<std::optional<SentinelAnswer>> ask_sentinel(
    boost::asio::any_io_executor executor, const ConnectionConfig& config, std::size_t index,
    std::chrono::steady_clock::time_point deadline);

/// The configuration epoch the sentinel holds for the primary, if it still names `primary` as
/// the primary; empty (logged) when it names another node or does not answer in time.
boost::asio::awaitable<std::optional<std::uint64_t>> confirm_primary(
    Connection& sentinel, const std::string& master_name, const Endpoint& primary,
    std::chrono::steady_clock::time_point deadline);

/// Subscribes `sentinel` to `+switch-master`; `on_switch` runs (on the sentinel connection's
/// strand) with the new primary whenever the one named `master_name` moves away from `primary`.
void watch_switches(const std::shared_ptr<Connection>& sentinel, std::string master_name,
                    Endpoint primary, std::function<void(const Endpoint&)> on_switch);

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_SENTINEL_HPP
