// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_SCRIPT_RUNNER_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_SCRIPT_RUNNER_HPP

/// \file
/// The lease scripts and how they run: EVALSHA (loading a script on first use, EVAL when the
/// server lost it), the primary's config epoch appended for a script that hands out fencing
/// tokens, WAIT for `min_replicas_acked` replicas after one that writes a lease; before a
/// deadline.

#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/reply.hpp>

#include "../core/acquisition_fsm.hpp"
#include "lease_connections.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace keyedpool::redis::detail {

/// A Lua script and its SHA once loaded.
struct Script {
    Script(const char* body, bool fences, bool waits_for_replicas)
        : plain_body(body),
          sharded_body(sharded(body)),
          hands_out_fences(fences),
          replicated(waits_for_replicas) {}
    /// A script's body for a Redis Cluster: hand-over messages go out with SPUBLISH (sharded
    /// pub/sub, to the subscribers of the slot's shard only) instead of PUBLISH (to every node).
    static std::string sharded(const char* body);

    std::string plain_body;    // for one server or Sentinel
    std::string sharded_body;  // for a cluster
    bool hands_out_fences;     // its last argument is the primary's config epoch (see run)
    bool replicated;           // waits for min_replicas_acked replicas (see run)
    std::string sha;           // guarded by ScriptRunner's mutex; empty until loaded
};

/// An acquire script's reply: {1, fencing token (0 without)} when acquired, else {0, ms until the
/// lease in the way ends (negative: none)}.
lease::AttemptResult read_attempt(const boost::system::error_code& ec, const Reply& reply);

class ScriptRunner {
  public:
    /// `options` outlive the runner.
    explicit ScriptRunner(const RedisLockServiceOptions& options) : options_(options) {}

    /// Runs `script` on `connections` before `deadline` (on the steady clock).
    boost::asio::awaitable<std::pair<boost::system::error_code, Reply>> run(
        LeaseConnections& connections, Script& script, std::vector<std::string> keys,
        std::vector<std::string> args, clock::time_point deadline);

    /// A copy of `script` (its SHA read under the lock), for work that may outlive its owner.
    Script copy(const Script& script);

    /// Scripts sent so far.
    std::uint64_t requests_sent() const noexcept {
        return requests_sent_.load(std::memory_order_relaxed);
    }

  private:
    boost::asio::awaitable<boost::system::error_code> replicas_acked(Connection& connection,
                                                                     clock::time_point deadline);

    const RedisLockServiceOptions& options_;
    std::mutex mutex_;  // the scripts' SHAs
    std::atomic<std::uint64_t> requests_sent_{0};
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_SCRIPT_RUNNER_HPP
