// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
#define KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>

#include <cstddef>
#include <utility>

namespace keyedpool::detail {

/// A counting semaphore on a buffered `concurrent_channel`. A unit is held while its message sits
/// in the channel's buffer: acquire = send (completes when the buffer has room; senders queue
/// FIFO), release = receive (which moves the oldest waiting sender into the buffer, i.e. hands the
/// unit over to it).
///
/// Invariant kept by `async_acquire`: it completes with success exactly when the caller holds a
/// unit. When cancellation arrives after the unit was handed over but before the completion ran
/// ("woken, then cancelled"), the unit is released again (waking the next waiter) and the operation
/// completes with `operation_aborted`, so no wake-up is lost.
///
/// Thread safety: all member functions are safe to call concurrently.
class AsyncSemaphore {
  public:
    using executor_type = boost::asio::any_io_executor;

    AsyncSemaphore(executor_type executor, std::size_t units)
        : channel_(std::move(executor), units) {}

    AsyncSemaphore(const AsyncSemaphore&) = delete;
    AsyncSemaphore& operator=(const AsyncSemaphore&) = delete;

    executor_type get_executor() { return channel_.get_executor(); }

    /// Takes a unit if one is free, without waiting.
    bool try_acquire() { return channel_.try_send(boost::system::error_code{}); }

    /// Returns a unit, handing it to the oldest waiter if there is one. Returns false (and does
    /// nothing) when no unit was held.
    bool release() {
        return channel_.try_receive([](boost::system::error_code) {});
    }

    /// Waits for a unit. Handler signature: `void(boost::system::error_code)`; success means the
    /// caller holds a unit. Supports terminal, partial and total per-operation cancellation
    /// (→ `operation_aborted`). Never completes inline.
    template <typename CompletionToken>
    auto async_acquire(CompletionToken&& token) {
        return boost::asio::async_compose<CompletionToken, void(boost::system::error_code)>(
            AcquireOp{this}, token, channel_);
    }

    /// Completes every pending `async_acquire` with `operation_aborted`. Held units stay held.
    void cancel_waiters() { channel_.cancel(); }

  private:
    struct AcquireOp {
        AsyncSemaphore* semaphore;
        bool started = false;

        template <typename Self>
        void operator()(Self& self, boost::system::error_code ec = {}) {
            if (!started) {
                started = true;
                // A queued acquire has no side effects, so every cancellation type is honoured.
                self.reset_cancellation_state(boost::asio::enable_total_cancellation());
                semaphore->channel_.async_send(boost::system::error_code{}, std::move(self));
                return;
            }
            if (ec) {  // cancelled while queued: no unit held
                self.complete(boost::asio::error::operation_aborted);
                return;
            }
            if (self.cancelled() != boost::asio::cancellation_type::none) {
                // Woken, then cancelled: pass the unit on instead of losing it.
                semaphore->release();
                self.complete(boost::asio::error::operation_aborted);
                return;
            }
            self.complete(boost::system::error_code{});
        }
    };

    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> channel_;
};

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_ASYNC_SEMAPHORE_HPP
