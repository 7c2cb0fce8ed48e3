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
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace keyedpool::detail {

/// A counting semaphore with a FIFO queue of waiting acquisitions. `release` hands a unit straight
/// to the oldest waiter (a later `try_acquire` cannot barge ahead of it).
///
/// Invariant kept by `async_acquire`: it completes with success exactly when the caller holds a
/// unit. When cancellation arrives after the unit was handed over but before the completion ran
/// ("woken, then cancelled"), the unit is released again (waking the next waiter) and the operation
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
        : executor_(std::move(executor)), units_(units), available_(units) {}

    AsyncSemaphore(const AsyncSemaphore&) = delete;
    AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

    ~AsyncSemaphore() {  // normally empty: a waiter keeps its owner (a KeyedMutex entry) alive
        cancel_waiters();
    }

    executor_type get_executor() const { return executor_; }

    /// Takes a unit if one is free and nobody waits, without waiting.
    bool try_acquire() {
        std::lock_guard lock(mutex_);
        if (available_ > 0 && waiters_.empty()) {
            --available_;
            return true;
        }
        return false;
    }

    /// Returns a unit, handing it to the oldest waiter if there is one. Returns false (and does
    /// nothing) when no unit was held.
    bool release() {
        Waiter* next = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (!waiters_.empty()) {
                next = &waiters_.front();
                waiters_.pop_front();
            } else if (available_ < units_) {
                ++available_;
                return true;
            } else {
                return false;
            }
        }
        next->complete({});  // the unit goes to it
        return true;
    }

    /// Waits for a unit. Handler signature: `void(boost::system::error_code)`; success means the
    /// caller holds a unit. Supports terminal, partial and total per-operation cancellation
    /// (→ `operation_aborted`). Never completes inline; the handler runs on its associated
    /// executor (default: the semaphore's).
    template <typename CompletionToken>
    auto async_acquire(CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) { this->start(std::move(handler)); }, token);
    }

    /// Completes every pending `async_acquire` with `operation_aborted`. Held units stay held.
    void cancel_waiters() {
        WaiterList taken;
        {
            std::lock_guard lock(mutex_);
            taken.swap(waiters_);
        }
        while (!taken.empty()) {
            Waiter& w = taken.front();
            taken.pop_front();
            w.complete(boost::asio::error::operation_aborted);
        }
    }

  private:
    class Waiter : public boost::intrusive::list_base_hook<> {
      public:
        /// Posts the completion to the handler's executor. Called once, without the lock.
        virtual void complete(boost::system::error_code ec) = 0;
        /// The waiter's cancellation came after it was handed a unit (on the handler's executor).
        bool cancelled_after_grant = false;

      protected:
        ~Waiter() = default;
    };
    using WaiterList = boost::intrusive::list<Waiter, boost::intrusive::constant_time_size<false>>;

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
                semaphore_.release();  // woken, then cancelled: pass the unit on
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
    void start(Handler handler) {
        auto* op = new Op<Handler>(*this, std::move(handler));
        bool granted = false;
        {
            std::lock_guard lock(mutex_);
            if (available_ > 0 && waiters_.empty()) {
                --available_;
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

    void cancel(Waiter& waiter) {  // on the waiter's handler's executor
        {
            std::lock_guard lock(mutex_);
            if (!waiter.is_linked()) {
                // Handed a unit already; its completion is on its way and passes the unit on.
                waiter.cancelled_after_grant = true;
                return;
            }
            waiters_.erase(waiters_.iterator_to(waiter));
        }
        waiter.complete(boost::asio::error::operation_aborted);
    }

    const executor_type executor_;
    const std::size_t units_;
    std::mutex mutex_;
    std::size_t available_;  // guarded by mutex_
    WaiterList waiters_;     // guarded by mutex_
};

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
