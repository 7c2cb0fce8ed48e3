// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_LOCAL_LOCK_SERVICE_HPP
#define KEYEDPOOL_LOCAL_LOCK_SERVICE_HPP

/// \file
/// `LocalLockService`: the lock API in one process, on `KeyedMutex`. Same contract as
/// `redis::RedisLockService` (leases, fencing tokens, watchdog, owner-only release), so code
/// written against `LockService&` is tested for real without a server.

#include <keyedpool/lock_guard.hpp>
#include <keyedpool/time_source.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <memory>

namespace spdlog {
class logger;
}

namespace keyedpool {

struct LocalLockServiceOptions {
    /// Longest resource name accepted (longer → `ResultCode::invalid_argument`). Must be > 0.
    std::size_t max_resource_bytes = 4096;
    /// Where leases, waits and the watchdog take their time. Null (the default): the steady
    /// clock. Tests pass a virtual clock (`TimeSource::from_traits<Time>()`).
    std::shared_ptr<const TimeSource> time;
    /// Where this service and its locks log. Null (the default): the library's logger
    /// (`keyedpool::logger()`).
    std::shared_ptr<spdlog::logger> logger;
};

/// Throws `std::invalid_argument` naming the first invalid field.
void validate(const LocalLockServiceOptions& options);

/// In-process locks with the same semantics as the Redis backend: a lease that ends the lock by
/// itself, strictly increasing fencing tokens (one counter for the service), renewal and
/// owner-only release. Waiters are served first come, first served.
///
/// Thread safety: distinct objects: safe. Shared object: safe. Guards may outlive the service.
class LocalLockService final : public LockService {
  public:
    /// \throws std::invalid_argument if `options` are invalid.
    explicit LocalLockService(boost::asio::any_io_executor executor,
                              LocalLockServiceOptions options = {});
    ~LocalLockService() override;

    LocalLockService(const LocalLockService&) = delete;
    LocalLockService& operator=(const LocalLockService&) = delete;

    boost::asio::any_io_executor get_executor() const noexcept;

    /// Number of resources currently locked (0 once every lock was released or its lease ended).
    /// For diagnostics and tests.
    std::size_t held() const;

    struct Impl;

  private:
    void lock_erased(std::string resource, LockOptions options, bool try_only,
                     LockDiagnostics* diagnostics, LockHandler handler) override;

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_LOCAL_LOCK_SERVICE_HPP
