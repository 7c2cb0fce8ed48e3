// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_SEMAPHORE_SERVICE_HPP
#define KEYEDPOOL_REDIS_SEMAPHORE_SERVICE_HPP

/// \file
/// `redis::RedisSemaphoreService`: counting semaphores on resource keys held in Redis, shared by
/// every process that uses the same server and key prefix (a fleet-wide budget).

#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/semaphore.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace keyedpool::redis {

/// Options of `RedisSemaphoreService`: the same fields, meanings and checks as the lock service's
/// (connection, re-check interval, request timeout, replicas, resource size, logger), with a key
/// prefix of its own. Invalid values throw `std::invalid_argument` naming the field.
struct RedisSemaphoreServiceOptions : RedisLockServiceOptions {
    RedisSemaphoreServiceOptions() { key_prefix = "keyedpool:semaphore:"; }
};

/// Throws `std::invalid_argument` naming the first invalid field.
void validate(const RedisSemaphoreServiceOptions& options);

/// The semaphore API (`SemaphoreService`) on a Redis server. For a resource `R` and prefix `P`:
///
/// | key / channel     | what                                                              |
/// |-------------------|-------------------------------------------------------------------|
/// | `P{R}:holders`    | sorted set: each holder's token → server time (ms) its lease ends |
/// | `P{R}:weights`    | hash: each holder's token → the permits it holds                  |
/// | `P{R}:queue`      | list: tokens of the acquisitions waiting, first come first served |
/// | `P{R}:queued`     | sorted set: each waiting token → server time its place expires    |
/// | `P{R}:asks`       | hash: each waiting token → "<permits> <lease ms>"                 |
/// | `P{R}:limit`      | the limit the latest acquisition passed                           |
/// | `P{R}:granted`    | pub/sub channel: the token permits were just handed to            |
///
/// Acquire, release and renew are Lua scripts. A holder whose lease ended (server time) is
/// dropped by the next script that looks, so a crashed process's permits come back within one
/// lease. Acquire takes the permits when they fit under the limit and nobody waits ahead;
/// otherwise it queues the caller (renewing its place) and returns when the first lease in the way
/// ends. Release removes the holder and hands the freed permits to the waiters at the head of the
/// queue while they fit (a heavy head is not overtaken), publishing each one's token: a waiter
/// named returns holding its permits without another request. Renew extends the caller's lease if
/// it has not ended. Waiting is the lock service's: the first attempt queues in Redis, the waiter
/// subscribes to the channel, tries once more, then sleeps until a hand-over names it, the first
/// lease ends, or `recheck_interval` passes. A waiter that gives up leaves the queue; one whose
/// process died loses its place after 3 × `recheck_interval` (at least 1 s) without a try.
///
/// Unlike locks, several acquisitions of one process wait in Redis side by side (each is one
/// place in the queue), so FIFO order is kept across processes and within one.
///
/// Thread safety: distinct objects: safe. Shared object: safe. Guards may outlive the service
/// (releasing them then fails with `ResultCode::shutting_down`; their leases end by themselves).
class RedisSemaphoreService final : public SemaphoreService {
  public:
    /// \throws std::invalid_argument if `options` are invalid.
    RedisSemaphoreService(boost::asio::any_io_executor executor,
                          RedisSemaphoreServiceOptions options);
    /// Closes the service's connections.
    ~RedisSemaphoreService() override;

    RedisSemaphoreService(const RedisSemaphoreService&) = delete;
    RedisSemaphoreService& operator=(const RedisSemaphoreService&) = delete;

    boost::asio::any_io_executor get_executor() const noexcept;
    /// Scripts (acquire, release, renew) sent to Redis so far by this service.
    std::uint64_t requests_sent() const noexcept;

    struct Impl;

  private:
    void acquire_erased(std::string resource, SemaphoreOptions options, bool try_only,
                        LockDiagnostics* diagnostics, PermitHandler handler) override;

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_SEMAPHORE_SERVICE_HPP
