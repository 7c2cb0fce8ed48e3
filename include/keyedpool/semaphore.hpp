// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SEMAPHORE_HPP
#define KEYEDPOOL_SEMAPHORE_HPP

/// \file
/// Counting semaphores on resource keys: `SemaphoreOptions`, the move-only `PermitGuard`, and the
/// `SemaphoreService` API (`LocalSemaphoreService` in one process).

#include <keyedpool/lock_guard.hpp>

#include <chrono>
#include <cstddef>
#include <string>

namespace keyedpool {

/// How `async_acquire` takes permits of a resource.
struct SemaphoreOptions {
    /// How many permits exist for the resource. The latest acquisition's value counts for the
    /// acquisitions after it (permits held beyond a lowered limit stay held until released).
    /// Must be >= 1.
    std::size_t limit = 1;
    /// How many permits this acquisition takes (its weight: a holder of 2 counts twice). Must be
    /// between 1 and `limit`.
    std::size_t permits = 1;
    /// How long to wait before failing with `ResultCode::lock_timeout`. 0 = one attempt. Must be
    /// >= 0.
    std::chrono::steady_clock::duration wait = std::chrono::seconds(10);
    /// The lease: the permits come back by themselves this long after they were taken (or last
    /// renewed), so a holder that crashed cannot keep them. Must be > 0.
    std::chrono::steady_clock::duration lease = std::chrono::seconds(30);
    /// Renew the lease about every `lease / 3` while the guard holds the permits (a watchdog);
    /// when that fails the holder is told (`lost()`, `lost_slot()`, `async_wait_lost`).
    bool auto_renew = false;
};

/// Proof of holding permits of a resource, until released or lost. Move-only.
///
/// A permit is a lease like a lock, but not exclusive: up to `limit` permits of a resource are
/// held at once. The guard behaves as `LockGuard` does — `lost()` when the lease ended or a
/// renewal was refused, `lost_slot()` / `async_wait_lost()` to stop the work then,
/// `async_release()` owner-only, a destructor that releases in the background and never throws —
/// without a fencing token (several holders share the resource).
///
/// Thread safety: a guard is used by one thread of control at a time.
class PermitGuard {
  public:
    PermitGuard() noexcept = default;
    /// The service's side: `lease` holds the permits' lease.
    PermitGuard(LockGuard lease, std::size_t permits) noexcept
        : lease_(std::move(lease)), permits_(permits) {}

    /// True while the guard has permits that are neither released nor lost.
    bool owns_permits() const noexcept { return lease_.owns_lock(); }
    explicit operator bool() const noexcept { return owns_permits(); }
    /// True once the lease ended without renewal or a renewal was refused.
    bool lost() const noexcept { return lease_.lost(); }
    /// The resource. Precondition: the guard is not empty.
    const std::string& resource() const noexcept { return lease_.resource(); }
    /// How many permits it holds (its weight); 0 for an empty guard.
    std::size_t permits() const noexcept { return permits_; }
    /// Where `lost_slot()` is signalled. Precondition: the guard is not empty.
    boost::asio::any_io_executor get_executor() const noexcept { return lease_.get_executor(); }
    /// The end of the lease as this process knows it.
    std::chrono::steady_clock::time_point valid_until() const noexcept {
        return lease_.valid_until();
    }
    /// Receives `cancellation_type::terminal` when the permits are lost (see `LockGuard`).
    boost::asio::cancellation_slot lost_slot() noexcept { return lease_.lost_slot(); }

    /// Releases the permits. Handler signature: `void(boost::system::error_code)`: success,
    /// `ResultCode::lock_lost` (already lost), `ResultCode::not_lock_owner` (the lease had ended
    /// and they were reclaimed), `ResultCode::invalid_argument` (empty or released guard), or a
    /// transport error (the lease still ends by itself).
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_release(CompletionToken&& token = {}) {
        return lease_.async_release(std::forward<CompletionToken>(token));
    }

    /// Completes with success when the permits are lost, `operation_aborted` when they are
    /// released first or the wait is cancelled. Handler signature:
    /// `void(boost::system::error_code)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_wait_lost(CompletionToken&& token = {}) {
        return lease_.async_wait_lost(std::forward<CompletionToken>(token));
    }

    /// Gives the permits up to their lease: no release, no renewal. The guard is empty
    /// afterwards.
    void detach() noexcept {
        lease_.detach();
        permits_ = 0;
    }

  private:
    LockGuard lease_;  // the same lease, watchdog and owner-only release as a lock
    std::size_t permits_ = 0;
};

/// The semaphore API both backends offer (`LocalSemaphoreService`; a Redis one shares it). Write
/// code against `SemaphoreService&` and test it with the in-process backend.
///
/// Per resource, permits are granted first come, first served: a waiter for several permits at
/// the head of the line is not overtaken by lighter ones behind it (it would starve).
///
/// Thread safety: distinct objects: safe. Shared object: safe.
class SemaphoreService {
  public:
    virtual ~SemaphoreService() = default;

    /// One attempt, never waits (`options.wait` is ignored). Handler signature:
    /// `void(boost::system::error_code, PermitGuard)`: success, `ResultCode::lock_busy` (not
    /// enough permits free, or others wait for them), `ResultCode::invalid_argument` (empty or too
    /// long resource, `limit` 0, `permits` 0 or above `limit`, lease <= 0), or a backend error.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_try_acquire(std::string resource, SemaphoreOptions options,
                           CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, PermitGuard)>(
            [this](auto handler, std::string res, SemaphoreOptions opts) {
                opts.wait = std::chrono::steady_clock::duration::zero();
                acquire_erased(std::move(res), opts, /*try_only=*/true, nullptr,
                               std::move(handler));
            },
            token, std::move(resource), options);
    }

    /// Waits up to `options.wait` for `options.permits` permits. Handler signature:
    /// `void(boost::system::error_code, PermitGuard)`: success, `ResultCode::lock_timeout`,
    /// `ResultCode::invalid_argument`, `operation_aborted` (per-operation cancellation,
    /// terminal), or a backend error.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_acquire(std::string resource, SemaphoreOptions options,
                       CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, PermitGuard)>(
            [this](auto handler, std::string res, SemaphoreOptions opts) {
                acquire_erased(std::move(res), opts, /*try_only=*/false, nullptr,
                               std::move(handler));
            },
            token, std::move(resource), options);
    }

    /// `async_acquire`, telling why it ended in `diagnostics` (e.g. the failure behind a
    /// `lock_timeout`), which must live until the handler runs.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_acquire(std::string resource, SemaphoreOptions options, LockDiagnostics& diagnostics,
                       CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, PermitGuard)>(
            [this](auto handler, std::string res, SemaphoreOptions opts, LockDiagnostics* diag) {
                *diag = LockDiagnostics{};
                acquire_erased(std::move(res), opts, /*try_only=*/false, diag, std::move(handler));
            },
            token, std::move(resource), options, &diagnostics);
    }

  protected:
    using PermitHandler =
        boost::asio::any_completion_handler<void(boost::system::error_code, PermitGuard)>;
    /// `diagnostics`: null, or filled before `handler` runs.
    virtual void acquire_erased(std::string resource, SemaphoreOptions options, bool try_only,
                                LockDiagnostics* diagnostics, PermitHandler handler) = 0;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_SEMAPHORE_HPP
