// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_LOCAL_SEMAPHORE_SERVICE_HPP
#define KEYEDPOOL_LOCAL_SEMAPHORE_SERVICE_HPP

/// \file
/// `LocalSemaphoreService`: the semaphore API in one process. Same contract as a fleet-wide
/// backend, so permit-protected code is tested for real.

#include <keyedpool/semaphore.hpp>
#include <keyedpool/time_source.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace keyedpool {

/// Options of `LocalSemaphoreService`; invalid values throw `std::invalid_argument` naming the
/// field.
struct LocalSemaphoreServiceOptions {
    /// Longest resource name accepted (longer → `ResultCode::invalid_argument`). Must be > 0.
    std::size_t max_resource_bytes = 4096;
    /// Where leases, waits and the watchdog take their time. Null (the default): the steady
    /// clock. Tests pass a virtual clock (`TimeSource::from_traits<Time>()`).
    std::shared_ptr<const TimeSource> time;
    /// Where this service logs. Null (the default): the library's logger.
    std::shared_ptr<spdlog::logger> logger;
};

/// Throws `std::invalid_argument` naming the first invalid field.
void validate(const LocalSemaphoreServiceOptions& options);

/// Counting semaphores on resource keys within one process: per resource, a weighted FIFO
/// (`permits` per acquisition, at most `limit` held at once; the latest `limit` counts), leases
/// that return the permits of a holder that neither released nor renewed them, a watchdog with
/// `auto_renew`. A resource's state exists only while someone holds or waits for its permits.
///
/// Thread safety: distinct objects: safe. Shared object: safe.
class LocalSemaphoreService final : public SemaphoreService {
  public:
    /// \throws std::invalid_argument if `options` are invalid.
    explicit LocalSemaphoreService(boost::asio::any_io_executor executor,
                                   LocalSemaphoreServiceOptions options = {});
    ~LocalSemaphoreService() override;

    LocalSemaphoreService(const LocalSemaphoreService&) = delete;
    LocalSemaphoreService& operator=(const LocalSemaphoreService&) = delete;

    boost::asio::any_io_executor get_executor() const noexcept;

    /// Permits of `resource` held now (for diagnostics and tests).
    std::size_t in_use(const std::string& resource) const;
    /// Resources with permits held or waited for (0 once all are given back).
    std::size_t resources() const;

    struct Impl;

  private:
    void acquire_erased(std::string resource, SemaphoreOptions options, bool try_only,
                        LockDiagnostics* diagnostics, PermitHandler handler) override;

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_LOCAL_SEMAPHORE_SERVICE_HPP
