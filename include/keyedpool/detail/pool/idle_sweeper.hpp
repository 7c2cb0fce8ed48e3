// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_IDLE_SWEEPER_HPP
#define KEYEDPOOL_DETAIL_POOL_IDLE_SWEEPER_HPP

/// \file
/// Idle eviction: a timer on a strand of the pool's that, while clients are cached, asks the
/// engine every `period` to close the clients idle for `idle_timeout`.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <memory>
#include <utility>

namespace keyedpool::detail::pool {

template <typename Timer>
class IdleSweeper {
  public:
    IdleSweeper(const boost::asio::any_io_executor& strand,
                typename Timer::clock_type::duration period)
        : strand_(strand), timer_(strand), period_(period) {}

    /// Starts sweeping unless it runs already: every period, `owner->evict_idle()`; the sweeper
    /// stops when `owner->size()` is 0. `owner` is kept alive while a sweep is pending.
    /// Thread-safe.
    template <typename Owner>
    void ensure_running(std::shared_ptr<Owner> owner) {
        if (running_.exchange(true)) {
            return;
        }
        boost::asio::post(strand_,
                          [this, owner = std::move(owner)]() mutable { arm(std::move(owner)); });
    }

    /// Stops for good (shutdown). Thread-safe.
    template <typename Owner>
    void stop(std::shared_ptr<Owner> owner) {
        stopped_.store(true);
        boost::asio::post(strand_, [this, owner = std::move(owner)] { timer_.cancel(); });
    }

  private:
    template <typename Owner>
    void arm(std::shared_ptr<Owner> owner) {
        if (stopped_.load()) {
            return;
        }
        timer_.expires_after(period_);
        timer_.async_wait([this, owner = std::move(owner)](boost::system::error_code ec) mutable {
            if (ec || stopped_.load()) {
                return;
            }
            owner->evict_idle();
            if (owner->size() != 0) {
                arm(std::move(owner));
                return;
            }
            // Nothing cached: stop; but a client stored meanwhile may have seen us running (and
            // not started us), so look once more.
            running_.store(false);
            if (owner->size() != 0 && !running_.exchange(true)) {
                arm(std::move(owner));
            }
        });
    }

    boost::asio::any_io_executor strand_;
    Timer timer_;  // on strand_
    typename Timer::clock_type::duration period_;
    std::atomic<bool> running_{false};
    std::atomic<bool> stopped_{false};
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_IDLE_SWEEPER_HPP
