// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_CLIENT_PERMITS_HPP
#define KEYEDPOOL_DETAIL_POOL_CLIENT_PERMITS_HPP

/// \file
/// The `max_clients` budget: one permit per client being built or cached, handed over in FIFO
/// order to builds queued for one.

#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <mutex>

namespace keyedpool::detail::pool {

/// A counting budget with a FIFO queue. It never calls anything while its lock is held and never
/// completes anything inline through an executor: a queued party is told through `granted()`,
/// which must only schedule work (the flight posts to its executor).
///
/// Every operation is safe to call concurrently. `leave` and a `release` that hands the permit to
/// the same party race safely: exactly one of them takes the party out of the queue, and
/// `leave` says which (false: a permit was handed over and `granted()` was or will be called).
class ClientPermits {
  public:
    /// A party (a build) waiting in the queue.
    class Request : public boost::intrusive::list_base_hook<> {
      public:
        /// Now holds a permit. Called without the permits' lock, at most once per queueing.
        virtual void granted() noexcept = 0;

      protected:
        ~Request() = default;
    };

    explicit ClientPermits(std::size_t limit) : limit_(limit) {}
    ClientPermits(const ClientPermits&) = delete;
    ClientPermits& operator=(const ClientPermits&) = delete;

    /// Takes a permit if one is free (and nobody queues ahead).
    bool try_acquire() {
        std::lock_guard lock(mutex_);
        return take_locked();
    }

    /// Takes a free permit (true), or queues `waiter` for the next one (false).
    bool acquire_or_queue(Request& waiter) {
        std::lock_guard lock(mutex_);
        if (take_locked()) {
            return true;
        }
        queue_.push_back(waiter);
        return false;
    }

    /// Takes `waiter` out of the queue. False when it was not queued any more: a permit was handed
    /// to it (its `granted()` runs or ran) and it must release that permit itself.
    bool leave(Request& waiter) {
        std::lock_guard lock(mutex_);
        if (!waiter.is_linked()) {
            return false;
        }
        queue_.erase(queue_.iterator_to(waiter));
        return true;
    }

    /// Returns a permit: hands it to the oldest queued waiter, or frees it.
    void release() noexcept {
        Request* next = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (queue_.empty()) {
                --in_use_;
                return;
            }
            next = &queue_.front();
            queue_.pop_front();
        }
        next->granted();
    }

    std::size_t limit() const noexcept { return limit_; }

    std::size_t in_use() const {
        std::lock_guard lock(mutex_);
        return in_use_;
    }

  private:
    bool take_locked() {
        if (in_use_ < limit_ && queue_.empty()) {
            ++in_use_;
            return true;
        }
        return false;
    }

    const std::size_t limit_;
    mutable std::mutex mutex_;
    std::size_t in_use_ = 0;  // held permits, including those handed over and not yet seen
    boost::intrusive::list<Request, boost::intrusive::constant_time_size<false>> queue_;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_CLIENT_PERMITS_HPP
