// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A Redis Cluster on loopback: primaries and replicas, each a redis-server with
// `cluster-enabled yes`, joined by `redis-cli --cluster create`, killed with the test process.
#ifndef KEYEDPOOL_TESTS_REDIS_CLUSTER_HPP
#define KEYEDPOOL_TESTS_REDIS_CLUSTER_HPP

#include "redis_server.hpp"

#include <keyedpool/redis/cluster_client.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace keyedpool::test {

class TlsFiles;

/// How the nodes are secured: `password` (requirepass + masterauth) and TLS (`tls` not null:
/// each node also listens with TLS, on a port of its own, and speaks TLS on the cluster bus
/// and for replication; TLS clients are told the TLS ports).
struct ClusterSecurity {
    std::string password;
    const TlsFiles* tls = nullptr;
};

class RedisCluster {
  public:
    /// Starts `primaries` × (1 + `replicas`) nodes and creates the cluster; returns once every node
    /// reports `cluster_state:ok` with all 16384 slots assigned and lists every primary's synced
    /// replicas.
    /// Throws `std::runtime_error` if that takes longer than 20 s.
    explicit RedisCluster(int primaries = 3, int replicas = 1, ClusterSecurity security = {});
    ~RedisCluster();
    RedisCluster(const RedisCluster&) = delete;
    RedisCluster& operator=(const RedisCluster&) = delete;

    /// Every node, in the order they were given to `redis-cli --cluster create` (primaries first).
    const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
    /// A client's view: every node as a seed (their TLS ports, with TLS on, when secured so), the
    /// password, 2 s to connect.
    redis::ClusterConfig config() const;
    /// Moves `slot` and its keys from the primary on (plain) port `from` to the one on `to`, as
    /// `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE each key, then SETSLOT
    /// NODE on the target, the source and every other running primary.
    void move_slot(std::uint16_t slot, std::uint16_t from, std::uint16_t to) const;
    /// Whether the node on (plain) port `port` is a primary.
    bool is_primary(std::uint16_t port) const;
    /// How long the constructor took.
    std::chrono::milliseconds startup() const { return startup_; }
    /// Waits (at most `limit`) until every running node reports `cluster_state:ok` and lists the
    /// replicas of each slot range.
    bool wait_until_ok(std::chrono::steady_clock::duration limit) const;

  private:
    std::vector<std::unique_ptr<RedisServer>> nodes_;
    std::vector<std::uint16_t> tls_ports_;  // nodes_[i]'s, when TLS is on
    int replicas_ = 0;                      // per primary
    ClusterSecurity security_;
    std::chrono::milliseconds startup_{};
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_REDIS_CLUSTER_HPP
