// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_LOCK_SERVICE_HPP
#define KEYEDPOOL_REDIS_LOCK_SERVICE_HPP

/// \file
/// `redis::RedisLockService`: locks on resource keys held in Redis, shared by every process that
/// uses the same server and key prefix.

#include <keyedpool/lock_guard.hpp>
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/time_source.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace keyedpool::redis {

/// Options of `RedisLockService`; invalid values throw `std::invalid_argument` naming the field.
struct RedisLockServiceOptions {
    /// The server (one connection for commands, one for pub/sub, both reconnected on demand).
    ConnectionConfig connection{};
    /// A Redis Cluster instead (when `cluster.seeds` is not empty; `connection` is then
    /// ignored): each lock's scripts run on the primary serving its hash slot (a lock's keys share
    /// one slot through the `{resource}` hash tag), over a `ClusterClient`; hand-over messages
    /// use sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, one subscriber connection per primary), so a
    /// release reaches only that shard. Fencing tokens start above the primary's cluster
    /// configuration epoch (`cluster_my_epoch`) << 32, so they never go backwards across a
    /// failover. See docs/deployments.md.
    ClusterConfig cluster{};
    /// Prepended to every key and channel. Must not be empty and must not contain '{' or '}' (the
    /// resource is wrapped in a hash tag so a lock's keys share one Redis Cluster slot).
    std::string key_prefix = "keyedpool:lock:";
    /// While waiting, re-try at least this often even without a release message (covers a message
    /// lost to a reconnect). Must be > 0.
    std::chrono::steady_clock::duration recheck_interval = std::chrono::seconds(1);
    /// Bound on each Redis request of an operation that has no wait of its own: a try-lock (and a
    /// lock with `wait` 0), a release, a renewal, giving back an abandoned acquisition. Past it
    /// the operation completes with `ResultCode::timeout` (the request is cancelled). A lock
    /// with a `wait` bounds its requests by what is left of the wait instead. Must be > 0.
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(2);
    /// Durability (as Redisson's `syncSlaves`): after each acquire and renewal, `WAIT` until this
    /// many replicas acknowledged it. 0 (the default): no waiting, a lock lives on the primary
    /// alone (asynchronous replication: a failover can lose it). When fewer acknowledge within
    /// `replicas_ack_timeout` (and the request's own deadline), an acquisition completes with
    /// `ResultCode::not_replicated` and the lock is given back; a renewal counts as failed (the
    /// watchdog retries until the lease ends, then the holder is told `lock_lost`). Costs one
    /// round trip plus the replication delay per acquisition. Must be >= 0.
    int min_replicas_acked = 0;
    /// How long `WAIT` may take (see `min_replicas_acked`). Must be > 0 when it is used.
    std::chrono::steady_clock::duration replicas_ack_timeout = std::chrono::milliseconds(500);
    /// Longest resource name accepted (longer → `ResultCode::invalid_argument`). Must be > 0.
    std::size_t max_resource_bytes = 4096;
    /// Where waits, re-checks, leases and the watchdog take their time (the requests' deadlines
    /// are measured on it too, and handed to the connections as steady-clock deadlines). Null
    /// (the default): the steady clock. Tests pass a virtual clock
    /// (`TimeSource::from_traits<Time>()`), as for `LocalLockService`.
    std::shared_ptr<const TimeSource> time;
    /// Where this service and its locks log. Null (the default): the library's logger
    /// (`keyedpool::logger()`).
    std::shared_ptr<spdlog::logger> logger;
};

/// Throws `std::invalid_argument` naming the first invalid field.
void validate(const RedisLockServiceOptions& options);

/// The lock API (`LockService`) on a Redis server. For a resource `R` and prefix `P` it uses:
///
/// | key / channel        | what                                                           |
/// |----------------------|----------------------------------------------------------------|
/// | `P{R}`               | the lock: holder's 128-bit random token, with a PX lease       |
/// | `P{R}:fence`         | the fencing counter, INCR'd atomically with each acquisition   |
/// | `P{R}:queue`         | list: tokens of the processes waiting, first come first served |
/// | `P{R}:queued`        | sorted set: each waiting token → server time its place expires |
/// | `P{R}:leases`        | hash: each waiting token → the lease it asked for              |
/// | `P{R}:released`      | pub/sub channel: on hand-over, "<token> <fencing token>"       |
///
/// Acquire, release and renew are Lua scripts (EVALSHA, falling back to EVAL on NOSCRIPT). Acquire
/// takes the lock (`SET PX` + `INCR P{R}:fence`) only when it is free and the queue is empty or
/// headed by the caller; otherwise it queues the caller (renewing its place) and returns the
/// holder's remaining lease. Release = compare-and-delete, then a direct hand-over: the lock is
/// set to the first live waiter's token with its lease and the next fencing token, and the
/// channel tells it so; renew = compare-and-PEXPIRE. Nobody can release or extend a lock whose
/// token they do not hold, and a releaser cannot take the lock back ahead of a process already
/// waiting (FIFO across processes). A waiter that gives up leaves the queue; one whose process died
/// loses its place after 3 × `recheck_interval` (at least 1 s) without a try.
///
/// Waiting: in one process, waiters for a resource queue locally (FIFO), so only the first contends
/// in Redis. It subscribes to the release channel, tries again, then sleeps at most
/// min(remaining lease, remaining wait, `recheck_interval`); the hand-over message naming it ends
/// the wait with the lock already its own. So a contended acquisition costs the try that queued
/// and the release that hands over, and waiters do not stampede.
///
/// Validity is tracked on `steady_clock` from when the acquire was sent, minus a drift allowance
/// (1% of the lease + 2 ms). A lock is granted only while valid for at least half its lease (a
/// grant whose reply came later is taken again within the wait, or given back). See
/// docs/locks.md for what this does and does not guarantee.
///
/// Deadlines: every Redis request is bounded by what is left of the operation's `wait`, or by
/// `request_timeout` for requests that do not wait (try-lock, release, renewal); past it the
/// request is cancelled in the connection and the operation completes with `lock_timeout` (a lock
/// with a wait) or `ResultCode::timeout`. Cancelling `async_lock` (terminal) ends it at any point
/// with `operation_aborted`; an acquisition ending without a lock gives back its queue place, and
/// the lock if a request it could not wait for took it, in the background.
///
/// Thread safety: distinct objects: safe. Shared object: safe. Guards may outlive the service
/// (releasing them then fails with `ResultCode::shutting_down`; their leases end by themselves).
class RedisLockService final : public LockService {
  public:
    /// \throws std::invalid_argument if `options` are invalid.
    RedisLockService(boost::asio::any_io_executor executor, RedisLockServiceOptions options);
    /// Closes the service's connections.
    ~RedisLockService() override;

    RedisLockService(const RedisLockService&) = delete;
    RedisLockService& operator=(const RedisLockService&) = delete;

    /// Lock scripts (acquire, release, renew) sent to Redis so far by this service.
    std::uint64_t lock_requests_sent() const noexcept;

    struct Impl;

  private:
    void lock_erased(std::string resource, LockOptions options, bool try_only,
                     LockDiagnostics* diagnostics, LockHandler handler) override;

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_LOCK_SERVICE_HPP
