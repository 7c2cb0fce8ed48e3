// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A Redis primary, its replica and three sentinels on loopback, for failover tests.
#ifndef KEYEDPOOL_TESTS_SENTINEL_GROUP_HPP
#define KEYEDPOOL_TESTS_SENTINEL_GROUP_HPP

#include "redis_server.hpp"

#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/reply.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace keyedpool::test {

/// One command on a fresh connection to 127.0.0.1:`port`, run to completion on a private
/// io_context (for fixtures and checks outside the test's own event loop). Throws on error.
redis::Reply blocking_command(std::uint16_t port, std::vector<std::string> command);
/// The same on a server that requires `password` (AUTH first).
redis::Reply blocking_command(std::uint16_t port, std::vector<std::string> command,
                              const std::string& password);

/// `redis-server <conf> --sentinel` on a free port, killed with the test process.
class SentinelServer {
  public:
    SentinelServer(const std::string& dir, const std::string& master_name,
                   std::uint16_t primary_port, std::chrono::milliseconds down_after);
    ~SentinelServer();
    SentinelServer(const SentinelServer&) = delete;
    SentinelServer& operator=(const SentinelServer&) = delete;
    std::uint16_t port() const { return port_; }

  private:
    std::uint16_t port_;
    pid_t pid_ = -1;
};

/// A primary, one replica of it, and three sentinels monitoring it under `master_name` (quorum
/// 2). The constructor returns once the replica is in sync and every sentinel knows the replica
/// and the other sentinels, so a failover can start at once.
class SentinelGroup {
  public:
    explicit SentinelGroup(std::string master_name = "mymaster",
                           std::chrono::milliseconds down_after = std::chrono::milliseconds(1000));
    ~SentinelGroup();

    const std::string& master_name() const { return master_name_; }
    /// The servers as started: `node(0)` was the primary, `node(1)` its replica.
    RedisServer& node(int index) { return index == 0 ? *primary_ : *replica_; }
    std::vector<redis::Endpoint> sentinels() const;
    /// A connection config that finds the primary through the sentinels.
    redis::ConnectionConfig config() const;

    /// The port every sentinel names as the primary's, once they agree and that node says
    /// ROLE master (waits up to `limit`; throws if they do not agree by then).
    std::uint16_t wait_for_agreed_primary(
        std::chrono::milliseconds limit = std::chrono::seconds(30));
    /// `SENTINEL FAILOVER` on the first sentinel; returns once the sentinels agree on the new
    /// primary (its port).
    std::uint16_t failover();

  private:
    std::string master_name_;
    std::string dir_;
    std::unique_ptr<RedisServer> primary_;
    std::unique_ptr<RedisServer> replica_;
    std::vector<std::unique_ptr<SentinelServer>> sentinels_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_SENTINEL_GROUP_HPP
