// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The state a LockGuard shares with its watchdog and its backend, and what each lock
// backend implements. Internal: the public header only names `detail::LockState`.
#ifndef KEYEDPOOL_SRC_LEASE_CORE_LOCK_STATE_HPP
#define KEYEDPOOL_SRC_LEASE_CORE_LOCK_STATE_HPP

#include <keyedpool/lock_guard.hpp>
#include <keyedpool/semaphore.hpp>
#include <keyedpool/time_source.hpp>

#include <spdlog/logger.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

namespace keyedpool {

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

    /// `time`: the service's clock and timers; `log`: the service's logger (null: the library's).
    LockState(boost::asio::any_io_executor executor, std::shared_ptr<LockBackend> lock_backend,
              std::shared_ptr<const TimeSource> time, std::shared_ptr<spdlog::logger> log);

    /// Starts the lease timer (and the watchdog when auto_renew). Call once, after acquiring.
    void start(clock::time_point acquire_sent_at);
    /// Stops renewal and keeps the lock (and its local hold) until the lease ends. On the strand.
    void keep_until_lease_end();
    /// Marks the lock lost (once): tells the holder, drops the backend's local hold.
    void mark_lost(const char* why);
    /// `valid_until` for a lease (re)started at `sent_at`: minus a drift allowance of 1% + 2 ms.
    clock::time_point validity_from(clock::time_point sent_at) const {
        return validity_from(lease, sent_at);
    }
    static clock::time_point validity_from(clock::duration lease, clock::time_point sent_at) {
        return sent_at + lease - (lease / 100 + std::chrono::milliseconds(2));
    }

    /// The logger of the service that issued the lock.
    std::shared_ptr<spdlog::logger> logger() const;

    boost::asio::strand<boost::asio::any_io_executor> strand;
    std::shared_ptr<LockBackend> backend;
    std::shared_ptr<const TimeSource> time;
    std::shared_ptr<spdlog::logger> log;  // null: the library's logger
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
    std::unique_ptr<TimeSource::Timer> lease_timer;  // fires at valid_until
    std::unique_ptr<TimeSource::Timer> renew_timer;  // the watchdog's pauses; with auto_renew only
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

namespace detail {
/// Checks a lock request: `invalid_argument` for an empty resource, one longer than
/// `max_resource_bytes`, a lease <= 0 or a negative wait.
/// Refusals are logged to `log` (null: the library's logger).
boost::system::error_code check_lock_request(const std::string& resource,
                                             const LockOptions& options,
                                             std::size_t max_resource_bytes,
                                             const std::shared_ptr<spdlog::logger>& log) noexcept;
/// Checks a semaphore request as `check_lock_request` does, and `invalid_argument` for a limit of
/// 0 or permits outside 1..limit.
boost::system::error_code check_semaphore_request(
    const std::string& resource, const SemaphoreOptions& options, std::size_t max_resource_bytes,
    const std::shared_ptr<spdlog::logger>& log) noexcept;
}  // namespace detail

}  // namespace keyedpool

#endif  // KEYEDPOOL_SRC_LEASE_CORE_LOCK_STATE_HPP
