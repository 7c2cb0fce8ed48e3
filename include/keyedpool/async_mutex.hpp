// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_ASYNC_MUTEX_HPP
#define KEYEDPOOL_ASYNC_MUTEX_HPP

/// \file
/// `AsyncMutex`: a mutex whose lock is awaited, not blocked on, built on
/// `boost::asio::experimental::concurrent_channel`.

#include <keyedpool/detail/async_semaphore.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>
#include <utility>

namespace keyedpool {

/// An asynchronous mutex for coroutines and callbacks.
///
/// - **FIFO hand-off**: `unlock()` hands the lock directly to the oldest waiter; a later
///   `try_lock()` or `async_lock()` cannot barge ahead of it.
/// - **Cancellation**: a waiting `async_lock` supports per-operation cancellation (terminal,
/// partial
///   and total) and then completes with `boost::asio::error::operation_aborted` without holding the
///   lock. If the lock was already handed to it when cancellation arrives, it passes the lock on to
///   the next waiter, so no wake-up is ever lost.
/// - **Completion**: handlers are never invoked from inside `async_lock` or `unlock`; they run on
///   their associated executor (default: the mutex's executor).
///
/// Thread safety: distinct objects: safe. Shared object: safe (all member functions may be called
/// concurrently from any thread).
class AsyncMutex {
  public:
    using executor_type = boost::asio::any_io_executor;

    /// Creates an unlocked mutex whose operations complete, by default, on `executor`.
    explicit AsyncMutex(executor_type executor) : semaphore_(std::move(executor), 1) {}

    AsyncMutex(const AsyncMutex&) = delete;
    AsyncMutex& operator=(const AsyncMutex&) = delete;

    executor_type get_executor() { return semaphore_.get_executor(); }

    /// Takes the lock if it is free and nobody waits for it. Never blocks.
    bool try_lock() { return semaphore_.try_acquire(); }

    /// Releases the lock, handing it to the oldest waiter if any. Calling it without holding the
    /// lock is a programming error; it is then ignored and returns false.
    bool unlock() { return semaphore_.release(); }

    /// Waits for the lock. Handler signature: `void(boost::system::error_code)`; on success the
    /// caller holds the lock and must call `unlock()` (or adopt it in a `Guard`).
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_lock(CompletionToken&& token = {}) {
        return semaphore_.async_acquire(std::forward<CompletionToken>(token));
    }

    /// Completes every waiting `async_lock` with `operation_aborted`. The current holder, if any,
    /// keeps the lock.
    void cancel_waiters() { semaphore_.cancel_waiters(); }

    /// Owns a held lock and releases it on destruction. Move-only.
    class Guard {
      public:
        Guard() noexcept = default;
        /// Adopts a lock the caller already holds.
        Guard(AsyncMutex& mutex, std::adopt_lock_t) noexcept : mutex_(&mutex) {}
        Guard(Guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
        Guard& operator=(Guard&& other) noexcept {
            if (this != &other) {
                unlock();
                mutex_ = std::exchange(other.mutex_, nullptr);
            }
            return *this;
        }
        ~Guard() { unlock(); }

        bool owns_lock() const noexcept { return mutex_ != nullptr; }
        explicit operator bool() const noexcept { return owns_lock(); }

        /// Releases the lock now (no-op when not owning it).
        void unlock() noexcept {
            if (auto* mutex = std::exchange(mutex_, nullptr)) {
                mutex->unlock();
            }
        }

      private:
        AsyncMutex* mutex_ = nullptr;
    };

    /// Like `async_lock`, but completes with a `Guard` owning the lock.
    /// Handler signature: `void(boost::system::error_code, AsyncMutex::Guard)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_scoped_lock(CompletionToken&& token = {}) {
        return async_lock(boost::asio::deferred([this](boost::system::error_code ec) {
            Guard guard = ec ? Guard{} : Guard{*this, std::adopt_lock};
            return boost::asio::deferred.values(ec, std::move(guard));
        }))(std::forward<CompletionToken>(token));
    }

  private:
    detail::AsyncSemaphore semaphore_;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_ASYNC_MUTEX_HPP
