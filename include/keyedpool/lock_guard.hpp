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
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
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
struct LockState;

/// What a lock service does for the locks it issued. Implemented by each backend.
class LockBackend {
  public:
    virtual ~LockBackend() = default;
    /// Extends the lease if `state.token` still owns the lock: success, `not_lock_owner`, or a
    /// transient error (the watchdog retries until the lease ends).
    virtual boost::asio::awaitable<boost::system::error_code> renew(LockState& state) = 0;
    /// Releases the lock if `state.token` still owns it: success or `not_lock_owner` (or an error).
    virtual boost::asio::awaitable<boost::system::error_code> release(LockState& state) = 0;
    /// The lock of a detached guard reached the end of its lease (the server forgets it by itself;
    /// an in-process backend forgets it here).
    virtual void lease_ended(LockState& state) noexcept { (void)state; }
};

/// One held lock: shared by its guard, its watchdog and its backend. Touched only on `strand`
/// (except the atomics).
struct LockState : std::enable_shared_from_this<LockState> {
    using clock = std::chrono::steady_clock;

    LockState(boost::asio::any_io_executor executor, std::shared_ptr<LockBackend> lock_backend);

    /// Starts the lease timer (and the watchdog when auto_renew). Call once, after acquiring.
    void start(clock::time_point acquire_sent_at);
    /// Stops renewal and keeps the lock (and its local hold) until the lease ends. On the strand.
    void keep_until_lease_end();
    /// Marks the lock lost (once): tells the holder, drops the backend's local hold.
    void mark_lost(const char* why);
    /// `valid_until` for a lease (re)started at `sent_at`: minus a drift allowance of 1% + 2 ms.
    clock::time_point validity_from(clock::time_point sent_at) const;

    boost::asio::strand<boost::asio::any_io_executor> strand;
    std::shared_ptr<LockBackend> backend;
    std::string resource;
    std::string token;  // 128 random bits, hex
    std::uint64_t fencing_token = 0;
    clock::duration lease{};
    bool auto_renew = false;
    clock::time_point valid_until{};
    bool released = false;
    std::atomic<bool> lost{false};
    std::atomic<bool> ended{false};    // released or lost
    std::shared_ptr<void> local_hold;  // the backend's in-process hold (e.g. a KeyedMutex guard)
    boost::asio::cancellation_signal lost_signal;
    boost::asio::steady_timer lease_timer;  // fires at valid_until
    boost::asio::steady_timer renew_timer;  // the watchdog's pause between renewals
    /// One timer per `async_wait_lost` in progress (never expiring); all are cancelled when the
    /// lock ends, one when its own wait is cancelled.
    std::list<std::shared_ptr<boost::asio::steady_timer>> lost_waits;

    /// The lock ended (released, lost or detached): wakes every `async_wait_lost` and stops the
    /// watchdog, so nothing keeps the executor busy. On the strand.
    void end_lost_waits();
};

/// 128 random bits as 32 hex digits.
std::string random_token();
}  // namespace detail

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
                lock_erased(std::move(res), options, /*try_only=*/true, std::move(handler));
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
                lock_erased(std::move(res), opts, /*try_only=*/false, std::move(handler));
            },
            token, std::move(resource), options);
    }

  protected:
    using LockHandler =
        boost::asio::any_completion_handler<void(boost::system::error_code, LockGuard)>;
    virtual void lock_erased(std::string resource, LockOptions options, bool try_only,
                             LockHandler handler) = 0;
};

namespace detail {
/// Checks a lock request: `invalid_argument` for an empty resource, one longer than
/// `max_resource_bytes`, a lease <= 0 or a negative wait.
boost::system::error_code check_lock_request(const std::string& resource,
                                             const LockOptions& options,
                                             std::size_t max_resource_bytes) noexcept;
}  // namespace detail

}  // namespace keyedpool

#endif  // KEYEDPOOL_LOCK_GUARD_HPP
