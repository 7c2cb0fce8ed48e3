// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_WAITER_HPP
#define KEYEDPOOL_DETAIL_POOL_WAITER_HPP

/// \file
/// A get waiting for its key's build: the caller's handler, its executor, and its place in the
/// flight's intrusive list.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <utility>

namespace keyedpool::detail::pool {

/// What every waiter of a flight receives.
template <typename Client>
struct GetResult {
    boost::system::error_code ec;
    std::shared_ptr<Client> client;
};

/// A get waiting for a build. While it is linked into an open flight, the flight (under its shard
/// lock) owns it; whoever unlinks it (the build's end, its own cancellation, shutdown) owns it from
/// then on and completes it exactly once with `complete_waiters`.
template <typename Client>
class Waiter : public boost::intrusive::list_base_hook<> {
  public:
    using Result = GetResult<Client>;

    virtual ~Waiter() = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    /// The handler's executor, counted as outstanding work while the get waits.
    const boost::asio::any_io_executor& executor() const noexcept { return executor_; }

    /// On `executor()`: disconnects the get's cancellation, destroys the waiter, then calls the
    /// handler with `result`.
    virtual void invoke(const Result& result) = 0;

  protected:
    explicit Waiter(boost::asio::any_io_executor executor)
        : executor_(boost::asio::prefer(std::move(executor),
                                        boost::asio::execution::outstanding_work.tracked)) {}

  private:
    boost::asio::any_io_executor executor_;
};

template <typename Client>
using WaiterList =
    boost::intrusive::list<Waiter<Client>, boost::intrusive::constant_time_size<false>>;

/// A waiter for a concrete handler type.
template <typename Client, typename Handler>
class WaiterOp final : public Waiter<Client> {
  public:
    using Result = GetResult<Client>;

    WaiterOp(Handler handler, const boost::asio::any_io_executor& fallback)
        : Waiter<Client>(boost::asio::get_associated_executor(handler, fallback)),
          handler_(std::move(handler)) {}

    /// Connects the get's per-operation cancellation to `on_cancel` (a function object called
    /// with the cancellation type). Call before the waiter is linked: once linked, another thread
    /// may complete it.
    template <typename OnCancel, typename... Args>
    void install_cancellation(Args&&... args) {
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            slot.template emplace<OnCancel>(std::forward<Args>(args)...);
        }
    }

    void invoke(const Result& result) override {
        // On the handler's executor, where its cancellation is emitted: the cancellation handler
        // (which points at this waiter) is removed before the waiter goes.
        boost::asio::get_associated_cancellation_slot(handler_).clear();
        Handler handler = std::move(handler_);
        delete this;
        std::move(handler)(result.ec, result.client);
    }

  private:
    Handler handler_;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_WAITER_HPP
