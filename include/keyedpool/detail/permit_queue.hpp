// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_PERMIT_QUEUE_HPP
#define KEYEDPOOL_DETAIL_PERMIT_QUEUE_HPP

/// \file
/// The in-process counting budget with a FIFO queue. One implementation serves the pool's
/// `max_clients` (a build queues for one permit) and `AsyncSemaphore`, under
/// `LocalSemaphoreService` and the lock queues (an acquisition queues for its weight).

#include <boost/container/small_vector.hpp>
#include <boost/intrusive/list.hpp>

#include <cstddef>
#include <mutex>

namespace keyedpool::detail {

/// A budget of `limit` units with a strict FIFO queue of requests, each for any number of units
/// (its weight). Units go to the oldest requests, in order, for as long as the oldest one's weight
/// fits: a later `try_acquire`, or a lighter request behind a heavy one, cannot barge ahead, so no
/// request starves. `set_limit` changes how many units exist; units held beyond a lowered limit
/// stay held and none is handed out until the count is under it.
///
/// It never calls anything while its lock is held and never runs anything itself: a queued
/// request is told through `granted()`, called without the lock, which must only schedule work.
///
/// Every operation is safe to call concurrently. `leave` and a `release` that hands units to the
/// same request race safely: exactly one of them takes the request out of the queue, and `leave`
/// says which (false: the units were handed over and `granted()` was or will be called; the
/// request must give them back itself).
class PermitQueue {
  public:
    /// A party waiting in the queue.
    class Request : public boost::intrusive::list_base_hook<> {
      public:
        /// Now holds `units`. Called without the queue's lock, at most once per queueing.
        virtual void granted() noexcept = 0;
        /// How many units it asks for. Set before queueing.
        std::size_t units = 1;

      protected:
        ~Request() = default;
    };

    explicit PermitQueue(std::size_t limit) : limit_(limit) {}
    PermitQueue(const PermitQueue&) = delete;
    PermitQueue& operator=(const PermitQueue&) = delete;

    /// Takes `units` if they are free and nobody queues ahead.
    bool try_acquire(std::size_t units = 1) {
        std::lock_guard lock(mutex_);
        return take_locked(units);
    }

    /// Takes `request.units` if they are free and nobody queues ahead (true), or queues `request`
    /// for them (false: `granted()` tells it when it holds them).
    bool acquire_or_queue(Request& request) {
        std::lock_guard lock(mutex_);
        if (take_locked(request.units)) {
            return true;
        }
        queue_.push_back(request);
        return false;
    }

    /// Takes `request` out of the queue. False when it was not queued any more: its units were
    /// handed to it (its `granted()` runs or ran) and it must release them itself. A head that
    /// leaves may let lighter requests behind it in: they are granted here.
    bool leave(Request& request) {
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            if (!request.is_linked()) {
                return false;
            }
            const bool was_head = &queue_.front() == &request;
            queue_.erase(queue_.iterator_to(request));
            if (was_head) {
                grant_locked(granted);
            }
        }
        notify(granted);
        return true;
    }

    /// Returns `units`, handing them to the oldest requests that fit, in order. False (and nothing
    /// done) when fewer were held.
    bool release(std::size_t units = 1) noexcept {
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            if (units > in_use_) {
                return false;
            }
            in_use_ -= units;
            grant_locked(granted);
        }
        notify(granted);
        return true;
    }

    /// Sets how many units exist. Raising it hands the new units to queued requests at once;
    /// lowering it takes nothing back.
    void set_limit(std::size_t units) {
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            limit_ = units;
            grant_locked(granted);
        }
        notify(granted);
    }

    /// Takes every queued request out of the queue and calls `each(request)` on it, without the
    /// lock (units held stay held).
    template <typename Each>
    void take_all(Each each) {
        boost::container::small_vector<Request*, 8> taken;
        {
            std::lock_guard lock(mutex_);
            while (!queue_.empty()) {
                taken.push_back(&queue_.front());
                queue_.pop_front();
            }
        }
        for (Request* request : taken) {
            each(*request);
        }
    }

    std::size_t limit() const {
        std::lock_guard lock(mutex_);
        return limit_;
    }

    /// Units held now, including those handed over and not yet seen (stale at once when busy).
    std::size_t in_use() const {
        std::lock_guard lock(mutex_);
        return in_use_;
    }

  private:
    /// Requests handed their units under the lock, told after it (usually one: no allocation).
    using Granted = boost::container::small_vector<Request*, 4>;

    bool fits(std::size_t units) const {  // under mutex_
        return in_use_ < limit_ && units <= limit_ - in_use_;
    }

    bool take_locked(std::size_t units) {
        if (queue_.empty() && fits(units)) {
            in_use_ += units;
            return true;
        }
        return false;
    }

    /// Moves the oldest requests whose units fit, in order, out of the queue into `granted`
    /// (unlinked: a `leave` racing the notification sees they were granted). Under mutex_.
    void grant_locked(Granted& granted) {
        while (!queue_.empty() && fits(queue_.front().units)) {
            Request& next = queue_.front();
            in_use_ += next.units;
            queue_.pop_front();
            granted.push_back(&next);
        }
    }

    static void notify(Granted& granted) noexcept {
        for (Request* request : granted) {
            request->granted();
        }
    }

    mutable std::mutex mutex_;
    std::size_t limit_;       // guarded by mutex_
    std::size_t in_use_ = 0;  // guarded by mutex_
    boost::intrusive::list<Request, boost::intrusive::constant_time_size<false>> queue_;
};

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_PERMIT_QUEUE_HPP
