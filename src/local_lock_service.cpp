// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/logging.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace keyedpool {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

struct LocalLockService::Impl : detail::LockBackend, std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor ex, LocalLockServiceOptions opts)
        : executor(std::move(ex)), queue(executor), options(opts) {}

    asio::awaitable<error_code> renew(detail::LockState& state) override {
        co_return owns(state) ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    asio::awaitable<error_code> release(detail::LockState& state) override {
        std::lock_guard lock(owners_mutex);
        auto it = owners.find(state.resource);
        if (it == owners.end() || it->second != state.token) {
            co_return ResultCode::not_lock_owner;
        }
        owners.erase(it);
        co_return error_code{};  // the caller drops the local hold, waking the next waiter
    }

    bool owns(const detail::LockState& state) {
        std::lock_guard lock(owners_mutex);
        auto it = owners.find(state.resource);
        return it != owners.end() && it->second == state.token && !state.ended.load();
    }

    using Acquired = std::pair<error_code, LockGuard>;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only) {
        if (auto ec =
                detail::check_lock_request(resource, options, self->options.max_resource_bytes)) {
            co_return Acquired{ec, LockGuard{}};
        }
        KeyedMutex<std::string>::Guard hold;
        if (try_only || options.wait == clock::duration::zero()) {
            auto [ec, guard] =
                co_await self->queue.async_try_lock(resource, asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return Acquired{try_only ? ResultCode::lock_busy : ResultCode::lock_timeout,
                                   LockGuard{}};
            }
            hold = std::move(guard);
        } else {
            asio::steady_timer timer(co_await asio::this_coro::executor, options.wait);
            auto [order, lock_ec, guard, timer_ec] =
                co_await asio::experimental::make_parallel_group(
                    self->queue.async_lock(resource, asio::deferred),
                    timer.async_wait(asio::deferred))
                    .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
            (void)timer_ec;
            if (lock_ec) {  // the timer won (or we were cancelled): the lock was not taken
                const auto state = co_await asio::this_coro::cancellation_state;
                co_return Acquired{state.cancelled() != asio::cancellation_type::none
                                       ? error_code(asio::error::operation_aborted)
                                       : error_code(ResultCode::lock_timeout),
                                   LockGuard{}};
            }
            (void)order;
            hold = std::move(guard);
        }
        auto state = std::make_shared<detail::LockState>(self->executor, self);
        state->resource = std::move(resource);
        state->token = detail::random_token();
        state->fencing_token = self->fence.fetch_add(1) + 1;
        state->lease = options.lease;
        state->auto_renew = options.auto_renew;
        {
            std::lock_guard lock(self->owners_mutex);
            self->owners[state->resource] = state->token;
        }
        state->local_hold = std::make_shared<KeyedMutex<std::string>::Guard>(std::move(hold));
        state->start(clock::now());
        co_return Acquired{error_code{}, LockGuard{std::move(state)}};
    }

    asio::any_io_executor executor;
    KeyedMutex<std::string> queue;  // FIFO waiting per resource
    LocalLockServiceOptions options;
    std::atomic<std::uint64_t> fence{0};
    std::mutex owners_mutex;
    std::unordered_map<std::string, std::string> owners;  // resource → holder's token
};

LocalLockService::LocalLockService(asio::any_io_executor executor,
                                   LocalLockServiceOptions options) {
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument("LocalLockServiceOptions.max_resource_bytes must be > 0");
    }
    impl_ = std::make_shared<Impl>(std::move(executor), options);
}

LocalLockService::~LocalLockService() = default;

asio::any_io_executor LocalLockService::get_executor() const noexcept {
    return impl_->executor;
}

void LocalLockService::lock_erased(std::string resource, LockOptions options, bool try_only,
                                   LockHandler handler) {
    auto strand = asio::make_strand(impl_->executor);
    asio::co_spawn(strand, Impl::lock(impl_, std::move(resource), options, try_only),
                   detail::bind_handler_associations(
                       std::move(handler), impl_->executor,
                       [](auto user_handler, std::exception_ptr e, Impl::Acquired result) {
                           if (e) {
                               result.first = detail::error_code_of(e, ResultCode::io_error);
                           }
                           std::move(user_handler)(result.first, std::move(result.second));
                       }));
}

}  // namespace keyedpool
