// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
#define KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP

#include <keyedpool/detail/permit_queue.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

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
/// cancellation to be emitted, right before the handler runs. A handler without an executor of its
/// own completes on the semaphore's: an acquisition cancelled from elsewhere — raced against a
/// timer in a `parallel_group` on a strand — must be bound to that strand (`bind_executor`). (A
/// channel-based semaphore clears the slot on whichever thread releases, racing an emission on the
/// handler's executor.)
///
/// Thread safety: all member functions are safe to call concurrently.
class AsyncSemaphore {
  public:
    using executor_type = boost::asio::any_io_executor;

    AsyncSemaphore(executor_type executor, std::size_t units)
        : executor_(std::move(executor)), queue_(units) {}

    AsyncSemaphore(const AsyncSemaphore&) = delete;
    AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

    ~AsyncSemaphore() {  // normally empty: a waiter keeps its owner (a KeyedMutex entry) alive
        cancel_waiters();
    }

    executor_type get_executor() const { return executor_; }

    /// Takes `units` if they are free and nobody waits, without waiting.
    bool try_acquire(std::size_t units = 1) { return queue_.try_acquire(units); }

    /// Returns `units`, handing them to the oldest waiters that fit, in order. Returns false (and
    /// does nothing) when fewer were held.
    bool release(std::size_t units = 1) { return queue_.release(units); }

    /// Sets how many units exist. Raising it hands the new units to waiters at once; lowering it
    /// takes nothing back (the units held stay held; none is handed out while at or above it).
    void set_limit(std::size_t units) { queue_.set_limit(units); }

    /// Units held now (for diagnostics and tests; stale at once on a busy semaphore).
    std::size_t in_use() const { return queue_.in_use(); }

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
        // Unlinked under the queue's lock: a cancellation racing this sees them gone, as with a
        // grant.
        queue_.take_all([](PermitQueue::Request& request) {
            static_cast<Waiter&>(request).complete(boost::asio::error::operation_aborted);
        });
    }

  private:
    class Waiter : public PermitQueue::Request {
      public:
        /// Posts the completion to the handler's executor. Called once, without the lock.
        virtual void complete(boost::system::error_code ec) = 0;
        /// Handed its units by a release: complete with success.
        void granted() noexcept override { complete({}); }
        /// The waiter's cancellation came after it was handed its units (on the handler's
        /// executor).
        bool cancelled_after_grant = false;

      protected:
        ~Waiter() = default;
    };

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
        // Installed before the waiter is published. A cancellation that comes after the units
        // were taken (at once, or handed over) finds it unlinked and makes the completion pass
        // them on.
        auto slot = boost::asio::get_associated_cancellation_slot(op->handler());
        if (slot.is_connected()) {
            slot.template emplace<CancelWaiter>(CancelWaiter{this, op});
        }
        if (queue_.acquire_or_queue(*op)) {
            op->complete({});
        }
    }

    void cancel(Waiter& waiter) {  // on the waiter's handler's executor
        if (!queue_.leave(waiter)) {
            // Handed its units already (or being completed); the completion passes them on.
            waiter.cancelled_after_grant = true;
            return;
        }
        waiter.complete(boost::asio::error::operation_aborted);
    }

    const executor_type executor_;
    PermitQueue queue_;  // the units and the waiters
};
}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
