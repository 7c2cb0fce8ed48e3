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

class RedisCluster {
  public:
    /// Starts `primaries` × (1 + `replicas`) nodes and creates the cluster; returns once every node
    /// reports `cluster_state:ok` with all 16384 slots assigned and lists every primary's synced
    /// replicas.
    /// Throws `std::runtime_error` if that takes longer than 20 s.
    explicit RedisCluster(int primaries = 3, int replicas = 1);
    ~RedisCluster();
    RedisCluster(const RedisCluster&) = delete;
    RedisCluster& operator=(const RedisCluster&) = delete;

    /// Every node, in the order they were given to `redis-cli --cluster create` (primaries first).
    const std::vector<std::unique_ptr<RedisServer>>& nodes() const { return nodes_; }
    /// A client's view: every node as a seed, 2 s to connect.
    redis::ClusterConfig config() const;
    /// How long the constructor took.
    std::chrono::milliseconds startup() const { return startup_; }
    /// Waits (at most `limit`) until every running node reports `cluster_state:ok` and lists the
    /// replicas of each slot range.
    bool wait_until_ok(std::chrono::steady_clock::duration limit) const;

  private:
    std::vector<std::unique_ptr<RedisServer>> nodes_;
    int replicas_ = 0;  // per primary
    std::chrono::milliseconds startup_{};
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_REDIS_CLUSTER_HPP
