// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
#define KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

namespace keyedpool::detail {

/// A counting semaphore with a FIFO queue of waiting acquisitions, each of any number of units
/// (its weight; 1 by default). `release` hands units straight to the oldest waiters, in order, as
/// long as the oldest one's weight fits (a later `try_acquire`, or a lighter waiter behind a heavy
/// one, cannot barge ahead: no waiter starves). `set_limit` changes how many units exist; units
/// held beyond a lowered limit stay held and are not handed out again until the count is under it.
///
/// Invariant kept by `async_acquire`: it completes with success exactly when the caller holds its
/// units. When cancellation arrives after the units were handed over but before the completion ran
/// ("woken, then cancelled"), they are released again (waking the next waiters) and the operation
/// completes with `operation_aborted`, so no wake-up is lost.
///
/// Cancellation is safe across threads: a waiter's cancellation handler is installed before the
/// waiter is queued and is removed only on the handler's executor, where Asio requires the
/// cancellation to be emitted, right before the handler runs. (A channel-based semaphore clears the
/// slot on whichever thread releases, racing an emission on the handler's executor.)
///
/// Thread safety: all member functions are safe to call concurrently.
class AsyncSemaphore {
  public:
    using executor_type = boost::asio::any_io_executor;

    AsyncSemaphore(executor_type executor, std::size_t units)
        : executor_(std::move(executor)), limit_(units) {}

    AsyncSemaphore(const AsyncSemaphore&) = delete;
    AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

    ~AsyncSemaphore() {  // normally empty: a waiter keeps its owner (a KeyedMutex entry) alive
        cancel_waiters();
    }

    executor_type get_executor() const { return executor_; }

    /// Takes `units` if they are free and nobody waits, without waiting.
    bool try_acquire(std::size_t units = 1) {
        std::lock_guard lock(mutex_);
        if (waiters_.empty() && fits(units)) {
            in_use_ += units;
            return true;
        }
        return false;
    }

    /// Returns `units`, handing them to the oldest waiters that fit, in order. Returns false (and
    /// does nothing) when fewer were held.
    bool release(std::size_t units = 1) {
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            if (units > in_use_) {
                return false;
            }
            in_use_ -= units;
            grant_waiters(granted);
        }
        complete_granted(granted);
        return true;
    }

    /// Sets how many units exist. Raising it hands the new units to waiters at once; lowering it
    /// takes nothing back (the units held stay held; none is handed out while at or above it).
    void set_limit(std::size_t units) {
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            limit_ = units;
            grant_waiters(granted);
        }
        complete_granted(granted);
    }

    /// Units held now (for diagnostics and tests; stale at once on a busy semaphore).
    std::size_t in_use() const {
        std::lock_guard lock(mutex_);
        return in_use_;
    }

    /// Waits for `units` (at most the limit, or it waits until the limit is raised). Handler
    /// signature: `void(boost::system::error_code)`; success means the caller holds them. Supports
    /// terminal, partial and total per-operation cancellation (→ `operation_aborted`). Never
    /// completes inline; the handler runs on its associated executor (default: the semaphore's).
    template <typename CompletionToken>
    auto async_acquire(std::size_t units, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this, units](auto handler) { this->start(units, std::move(handler)); }, token);
    }

    /// `async_acquire(1, token)`.
    template <typename CompletionToken>
    auto async_acquire(CompletionToken&& token) {
        return async_acquire(1, std::forward<CompletionToken>(token));
    }

    /// Completes every pending `async_acquire` with `operation_aborted`. Held units stay held.
    void cancel_waiters() {
        // Unlinked under the lock: a cancellation racing this sees them gone, as with a grant.
        std::vector<Waiter*> taken;
        {
            std::lock_guard lock(mutex_);
            while (!waiters_.empty()) {
                taken.push_back(&waiters_.front());
                waiters_.pop_front();
            }
        }
        for (Waiter* waiter : taken) {
            waiter->complete(boost::asio::error::operation_aborted);
        }
    }

  private:
    class Waiter : public boost::intrusive::list_base_hook<> {
      public:
        /// Posts the completion to the handler's executor. Called once, without the lock.
        virtual void complete(boost::system::error_code ec) = 0;
        /// How many units it waits for.
        std::size_t units = 1;
        /// The waiter's cancellation came after it was handed its units (on the handler's
        /// executor).
        bool cancelled_after_grant = false;

      protected:
        ~Waiter() = default;
    };
    using WaiterList = boost::intrusive::list<Waiter, boost::intrusive::constant_time_size<false>>;
    /// Waiters handed their units under the lock, completed after it (usually one: no allocation).
    using Granted = boost::container::small_vector<Waiter*, 4>;

    template <typename Handler>
    class Op final : public Waiter {
      public:
        Op(AsyncSemaphore& semaphore, Handler handler)
            : semaphore_(semaphore),
              handler_(std::move(handler)),
              executor_(boost::asio::prefer(
                  boost::asio::get_associated_executor(handler_, semaphore.executor_),
                  boost::asio::execution::outstanding_work.tracked)) {}

        Handler& handler() noexcept { return handler_; }

        void complete(boost::system::error_code ec) override {
            // The posted function owns the op: if it is destroyed without running (its executor's
            // context is gone), so is the op.
            struct Run {
                std::unique_ptr<Op> op;
                boost::system::error_code ec;
                void operator()() { op.release()->finish(ec); }
            };
            auto executor = executor_;
            boost::asio::post(executor, Run{std::unique_ptr<Op>(this), ec});
        }

      private:
        void finish(boost::system::error_code ec) {  // on the handler's executor
            boost::asio::get_associated_cancellation_slot(handler_).clear();
            if (!ec && this->cancelled_after_grant) {
                semaphore_.release(this->units);  // woken, then cancelled: pass the units on
                ec = boost::asio::error::operation_aborted;
            }
            Handler handler = std::move(handler_);
            delete this;
            std::move(handler)(ec);
        }

        AsyncSemaphore& semaphore_;
        Handler handler_;
        boost::asio::any_io_executor executor_;  // the handler's, counted as work while waiting
    };

    /// Takes a waiter out of the queue when its acquisition is cancelled.
    struct CancelWaiter {
        AsyncSemaphore* semaphore;
        Waiter* waiter;
        void operator()(boost::asio::cancellation_type type) const {
            if (type != boost::asio::cancellation_type::none) {
                semaphore->cancel(*waiter);
            }
        }
    };

    template <typename Handler>
    void start(std::size_t units, Handler handler) {
        auto* op = new Op<Handler>(*this, std::move(handler));
        op->units = units;
        bool granted = false;
        {
            std::lock_guard lock(mutex_);
            if (waiters_.empty() && fits(units)) {
                in_use_ += units;
                granted = true;
            } else {
                auto slot = boost::asio::get_associated_cancellation_slot(op->handler());
                if (slot.is_connected()) {  // before the waiter is published
                    slot.template emplace<CancelWaiter>(CancelWaiter{this, op});
                }
                waiters_.push_back(*op);
            }
        }
        if (granted) {
            op->complete({});
        }
    }

    bool fits(std::size_t units) const {  // under mutex_
        return in_use_ < limit_ && units <= limit_ - in_use_;
    }

    /// Moves the oldest waiters whose units fit, in order, out of the queue into `granted`
    /// (unlinked: a cancellation racing the completion sees it was granted). Under mutex_.
    void grant_waiters(Granted& granted) {
        while (!waiters_.empty() && fits(waiters_.front().units)) {
            Waiter& next = waiters_.front();
            in_use_ += next.units;
            waiters_.pop_front();
            granted.push_back(&next);
        }
    }

    /// Completes the waiters `grant_waiters` took: their units are theirs. Without the lock.
    static void complete_granted(Granted& granted) {
        for (Waiter* waiter : granted) {
            waiter->complete({});
        }
    }

    void cancel(Waiter& waiter) {  // on the waiter's handler's executor
        Granted granted;
        {
            std::lock_guard lock(mutex_);
            if (!waiter.is_linked()) {
                // Handed its units already (or being completed); the completion passes them on.
                waiter.cancelled_after_grant = true;
                return;
            }
            const bool was_head = &waiters_.front() == &waiter;
            waiters_.erase(waiters_.iterator_to(waiter));
            if (was_head) {
                // A heavy head that leaves may unblock lighter waiters behind it.
                grant_waiters(granted);
            }
        }
        waiter.complete(boost::asio::error::operation_aborted);
        complete_granted(granted);
    }

    const executor_type executor_;
    mutable std::mutex mutex_;
    std::size_t limit_;       // guarded by mutex_
    std::size_t in_use_ = 0;  // guarded by mutex_
    WaiterList waiters_;      // guarded by mutex_
};

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
