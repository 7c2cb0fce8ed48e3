// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_LOCK_GUARD_HPP
#define KEYEDPOOL_LOCK_GUARD_HPP

/// \file
/// What the lock services (`LocalLockService`, `redis::RedisLockService`) hand out: `LockOptions`
/// and the move-only `LockGuard`.

#include <keyedpool/result_code.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace keyedpool {

/// How `async_lock` acquires a lock.
struct LockOptions {
    /// How long to wait for the lock before failing with `ResultCode::lock_timeout`. 0 = one
    /// attempt (like `async_try_lock`, but failing with `lock_timeout`). Must be >= 0.
    std::chrono::steady_clock::duration wait = std::chrono::seconds(10);
    /// The lease: the lock ends by itself this long after it was acquired (or last renewed), so a
    /// holder that crashed cannot block the resource forever. Must be > 0 (rounded up to whole
    /// milliseconds).
    std::chrono::steady_clock::duration lease = std::chrono::seconds(30);
    /// Renew the lease about every `lease / 3` while the guard holds the lock (a watchdog). When a
    /// renewal is refused, or none succeeds before the lease ends, the holder is told (`lost()`,
    /// `lost_slot()`, `async_wait_lost`).
    bool auto_renew = false;
};

namespace detail {
struct LockState;  // src/lock_state.hpp: what a guard shares with its watchdog and backend
}  // namespace detail

/// What an acquisition can tell about how it ended, filled by the `async_lock` and
/// `async_acquire` overloads that take it, before their handler runs (like Boost.MySQL's
/// `diagnostics`). The error code says what happened; this says why.
struct LockDiagnostics {
    /// When the acquisition failed: what stood in its way last. `ResultCode::lock_busy`: the lock
    /// (or the permits) stayed held by others until the wait ended; a transient failure retried
    /// until the wait was spent (`io_error`, `connect_failed`, `backoff`, `server_busy`,
    /// `too_many_redirects`, a system error); `ResultCode::timeout`: the server did not answer
    /// within what was left of the wait. Empty on success, and when nothing was tried (an invalid
    /// argument, a cancellation before the first request).
    boost::system::error_code cause;
    /// Requests the acquisition sent to the lock server (0 for the in-process backends, and when
    /// it never got past this process's own queue).
    int attempts = 0;
};

/// Proof of holding a lock on a resource, until released or lost. Move-only.
///
/// - `fencing_token()`: a number issued atomically with the acquisition, strictly increasing per
///   resource. Pass it to the store the lock protects so it can refuse a stale holder (one whose
///   lease ran out while it was paused) — the only protection that holds when pauses exceed the
///   lease.
/// - `lost()`: the lease ended (not renewed in time) or a renewal was refused. The holder must stop
///   the protected work. `lost_slot()` delivers a terminal cancellation at that moment (bind one
///   operation to it); `async_wait_lost()` completes then (race your work against it).
/// - `async_release()`: releases, but only if this guard's token still owns the lock.
/// - The destructor never throws; if the guard still holds the lock it starts a best-effort release
///   in the background.
///
/// Thread safety: a guard is used by one thread of control at a time; the state it shares with its
/// watchdog is internally synchronised.
class LockGuard {
  public:
    LockGuard() noexcept = default;
    explicit LockGuard(std::shared_ptr<detail::LockState> state) noexcept;
    LockGuard(LockGuard&& other) noexcept = default;
    LockGuard& operator=(LockGuard&& other) noexcept;
    ~LockGuard();

    /// True while the guard has a lock that is neither released nor lost.
    bool owns_lock() const noexcept;
    explicit operator bool() const noexcept { return owns_lock(); }
    /// True once the lease ended without renewal or a renewal was refused.
    bool lost() const noexcept;
    const std::string& resource() const noexcept;
    std::uint64_t fencing_token() const noexcept;
    /// The strand this lock's state lives on (where `lost_slot()` is signalled). Precondition: the
    /// guard is not empty.
    boost::asio::any_io_executor get_executor() const noexcept;
    /// The end of the lease as this process knows it (sent time + lease − drift).
    std::chrono::steady_clock::time_point valid_until() const noexcept;

    /// A slot that receives `cancellation_type::terminal` when the lock is lost. The signal is
    /// emitted on `get_executor()`: bind to it only operations that run there (or that tolerate
    /// cancellation from that executor). Like any slot it holds one handler at a time.
    boost::asio::cancellation_slot lost_slot() noexcept;

    /// Releases the lock. Handler signature: `void(boost::system::error_code)`: success,
    /// `ResultCode::lock_lost` (the lock was already lost), `ResultCode::not_lock_owner` (someone
    /// else owns it now; nothing was released), `ResultCode::invalid_argument` (empty or already
    /// released guard), or a transport error (the lease still ends by itself).
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_release(CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) { release_erased(std::move(handler)); }, token);
    }

    /// Gives the lock up to its lease: no release, no more renewal; the lock stays held until the
    /// lease ends (on every backend), then frees by itself. Turns a try-lock into a dedupe window
    /// ("this may run once per lease"). The guard is empty afterwards. Never throws.
    void detach() noexcept;

    /// Completes with success when the lock is lost, or `operation_aborted` when it is released
    /// first or the wait is cancelled (per-operation cancellation: terminal, partial, total), so
    /// `co_await (work() || guard.async_wait_lost())` stops the work when the lock is lost.
    /// Handler signature: `void(boost::system::error_code)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_wait_lost(CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) { wait_lost_erased(std::move(handler)); }, token);
    }

  private:
    void release_erased(
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler);
    void wait_lost_erased(
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler);
    void release_in_background() noexcept;

    std::shared_ptr<detail::LockState> state_;
};

/// The lock API both backends offer (`LocalLockService`, `redis::RedisLockService`). Write
/// lock-protected code against `LockService&` and test it with the in-process backend.
///
/// The resource is what the lock protects (an account, a document list: "relink list 42"), not the
/// method that takes it: two different operations on one resource must exclude each other.
///
/// Thread safety: distinct objects: safe. Shared object: safe.
class LockService {
  public:
    virtual ~LockService() = default;

    /// One attempt, never waits. Handler signature: `void(boost::system::error_code, LockGuard)`:
    /// success, `ResultCode::lock_busy` (held elsewhere), `ResultCode::invalid_argument` (empty or
    /// too long resource, lease <= 0), `ResultCode::shutting_down`, or a backend error. Keeping the
    /// lock until its lease ends (never releasing) makes a dedupe window: "this may run once per
    /// lease".
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_try_lock(std::string resource, std::chrono::steady_clock::duration lease,
                        CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, LockGuard)>(
            [this](auto handler, std::string res, std::chrono::steady_clock::duration l) {
                LockOptions options;
                options.wait = std::chrono::steady_clock::duration::zero();
                options.lease = l;
                lock_erased(std::move(res), options, /*try_only=*/true, nullptr,
                            std::move(handler));
            },
            token, std::move(resource), lease);
    }

    /// Waits up to `options.wait` for the lock. Handler signature:
    /// `void(boost::system::error_code, LockGuard)`: success, `ResultCode::lock_timeout`,
    /// `ResultCode::invalid_argument`, `ResultCode::shutting_down`, `operation_aborted`
    /// (per-operation cancellation, terminal), or a backend error.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_lock(std::string resource, LockOptions options, CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, LockGuard)>(
            [this](auto handler, std::string res, LockOptions opts) {
                lock_erased(std::move(res), opts, /*try_only=*/false, nullptr, std::move(handler));
            },
            token, std::move(resource), options);
    }

    /// `async_lock`, telling why it ended in `diagnostics` (e.g. the failure behind a
    /// `lock_timeout`), which must live until the handler runs.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_lock(std::string resource, LockOptions options, LockDiagnostics& diagnostics,
                    CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, LockGuard)>(
            [this](auto handler, std::string res, LockOptions opts, LockDiagnostics* diag) {
                *diag = LockDiagnostics{};
                lock_erased(std::move(res), opts, /*try_only=*/false, diag, std::move(handler));
            },
            token, std::move(resource), options, &diagnostics);
    }

  protected:
    using LockHandler =
        boost::asio::any_completion_handler<void(boost::system::error_code, LockGuard)>;
    /// `diagnostics`: null, or filled before `handler` runs.
    virtual void lock_erased(std::string resource, LockOptions options, bool try_only,
                             LockDiagnostics* diagnostics, LockHandler handler) = 0;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_LOCK_GUARD_HPP
