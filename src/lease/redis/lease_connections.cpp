// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "lease_connections.hpp"

#include <keyedpool/redis/cluster.hpp>

#include "../../redis/pooled_connection.hpp"

#include <boost/asio/detached.hpp>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

PoolOptions connection_pool_options() {
    PoolOptions o;
    o.backoff.initial = std::chrono::milliseconds(50);
    o.backoff.max = std::chrono::seconds(2);
    return o;
}

}  // namespace

LeaseConnections::LeaseConnections(const asio::any_io_executor& executor,
                                   const RedisLockServiceOptions& options,
                                   std::shared_ptr<const TimeSource> time,
                                   SubscriberMade subscriber_made)
    : executor_(executor),
      options_(options),
      time_(std::move(time)),
      // The factory holds copies, not this object: a build may still run after it is gone.
      connections_(
          executor_,
          [ex = executor_, single = options_.connection, node = options_.cluster.node,
           cluster = !options_.cluster.seeds.empty(),
           made = std::move(subscriber_made)](const ConnectionRole& role) {
              ConnectionConfig config = single;
              if (cluster) {  // a primary's subscriber
                  config = node;
                  config.host = role.primary.host;
                  config.port = role.primary.port;
              }
              return connect(ex, std::move(config),
                             role.kind == ConnectionRole::Kind::subscriber ? made : nullptr);
          },
          connection_pool_options()) {
    if (!options_.cluster.seeds.empty()) {
        cluster_ = std::make_unique<ClusterPool>(
            executor_,
            [ex = executor_, config = options_.cluster](
                const int&) -> asio::awaitable<std::shared_ptr<ClusterClient>> {
                co_return co_await ClusterClient::async_connect(ex, config);
            },
            connection_pool_options());
    }
}

void LeaseConnections::shutdown() {
    connections_.async_shutdown(asio::detached);
    if (cluster_) {
        cluster_->async_shutdown(asio::detached);
    }
}

asio::awaitable<std::shared_ptr<Connection>> LeaseConnections::connect(
    asio::any_io_executor executor, ConnectionConfig config, SubscriberMade subscriber_made) {
    auto connection = co_await Connection::async_connect(executor, std::move(config));
    if (subscriber_made) {
        subscriber_made(*connection);
    }
    co_return connection;
}

clock::time_point LeaseConnections::io_deadline(clock::time_point deadline) const {
    if (time_ == TimeSource::steady() || deadline == clock::time_point::max()) {
        return deadline;
    }
    return clock::now() + (deadline - time_->now());
}

asio::awaitable<std::pair<error_code, std::shared_ptr<Connection>>> LeaseConnections::connection(
    const ConnectionRole& role, clock::time_point deadline) {
    co_return co_await pooled_connection(connections_, role, deadline);
}

asio::awaitable<std::pair<error_code, std::shared_ptr<ClusterClient>>>
LeaseConnections::cluster_client(clock::time_point deadline) {
    co_return co_await pooled_connection(*cluster_, 0, deadline);
}

asio::awaitable<std::optional<ConnectionRole>> LeaseConnections::subscriber_for(
    const std::string& channel, clock::time_point deadline) {
    ConnectionRole role;
    role.kind = ConnectionRole::Kind::subscriber;
    if (!on_cluster()) {
        co_return role;
    }
    auto [ec, cluster] = co_await cluster_client(deadline);
    if (ec) {
        co_return std::nullopt;
    }
    auto primary = cluster->primary_for(hash_slot(channel));
    if (!primary) {
        co_return std::nullopt;
    }
    role.primary = std::move(*primary);
    co_return role;
}

}  // namespace keyedpool::redis::detail
