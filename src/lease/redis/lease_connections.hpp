// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CONNECTIONS_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CONNECTIONS_HPP

/// \file
/// The connections of the Redis lease backend, by role: one for commands (on a cluster: a
/// cluster client routing them by slot) and one subscriber for hand-over messages (on a
/// cluster: one per primary, for its shard's sharded channels). Each is a `KeyedClientPool`
/// entry, made on first use and again after it fails; waited for no longer than a deadline.

#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/time_source.hpp>

#include "../../redis/endpoint_hash.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

namespace keyedpool::redis::detail {

using clock = std::chrono::steady_clock;

/// What a connection of the backend is for.
struct ConnectionRole {
    enum class Kind : std::uint8_t { commands, subscriber };
    Kind kind = Kind::commands;
    Endpoint primary{};  // a cluster's subscriber: the primary it listens on; else empty
    friend bool operator==(const ConnectionRole&, const ConnectionRole&) = default;
};

struct ConnectionRoleHash {
    std::size_t operator()(const ConnectionRole& role) const noexcept {
        return EndpointHash()(role.primary) * 2 + static_cast<std::size_t>(role.kind);
    }
};

class LeaseConnections {
  public:
    /// Called with every subscriber connection made, before anyone uses it (to install its push
    /// handler and watch it close). Copied into the connection factory: it must not refer to
    /// anything that may be gone when a build completes.
    using SubscriberMade = std::function<void(Connection&)>;

    /// `options` are validated by the caller and outlive this object.
    LeaseConnections(const boost::asio::any_io_executor& executor,
                     const RedisLockServiceOptions& options, std::shared_ptr<const TimeSource> time,
                     SubscriberMade subscriber_made);

    bool on_cluster() const noexcept { return cluster_ != nullptr; }

    /// A deadline on the service's clock as a deadline of the steady clock, for the connections.
    clock::time_point io_deadline(clock::time_point deadline) const;

    /// The connection for `role` before `deadline` (on the steady clock).
    boost::asio::awaitable<std::pair<boost::system::error_code, std::shared_ptr<Connection>>>
    connection(const ConnectionRole& role, clock::time_point deadline);
    /// The connection for `role` if one is made and healthy now, else null.
    std::shared_ptr<Connection> try_connection(const ConnectionRole& role) {
        return connections_.try_get(role);
    }
    /// The cluster client (on a cluster only; made on first use), before `deadline`.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::shared_ptr<ClusterClient>>>
    cluster_client(clock::time_point deadline);
    /// The subscriber for `channel`: the one subscriber, or on a cluster the subscriber of the
    /// primary serving the channel's slot (none when the map has none, or no map can be had
    /// before `deadline`).
    boost::asio::awaitable<std::optional<ConnectionRole>> subscriber_for(
        const std::string& channel, clock::time_point deadline);

    /// Closes every connection.
    void shutdown();

  private:
    using Pool =
        KeyedClientPool<ConnectionRole, Connection, ClientTraits<Connection>, ConnectionRoleHash>;
    using ClusterPool = KeyedClientPool<int, ClusterClient>;  // one key: 0

    /// Makes a connection; `subscriber_made` (null for the commands connection) sees it first.
    static boost::asio::awaitable<std::shared_ptr<Connection>> connect(
        boost::asio::any_io_executor executor, ConnectionConfig config,
        SubscriberMade subscriber_made);

    boost::asio::any_io_executor executor_;
    const RedisLockServiceOptions& options_;
    std::shared_ptr<const TimeSource> time_;
    Pool connections_;
    std::unique_ptr<ClusterPool> cluster_;  // on a cluster only
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CONNECTIONS_HPP
