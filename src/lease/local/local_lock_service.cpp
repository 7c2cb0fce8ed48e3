// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/logging.hpp>

#include "../core/lock_common.hpp"

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
        : executor(std::move(ex)), queue(executor), options(std::move(opts)) {
        if (!options.time) {
            options.time = TimeSource::steady();
        }
    }

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

    void lease_ended(detail::LockState& state) noexcept override {
        std::lock_guard lock(owners_mutex);
        if (auto it = owners.find(state.resource);
            it != owners.end() && it->second == state.token) {
            owners.erase(it);
        }
    }

    std::size_t owner_entries() {
        std::lock_guard lock(owners_mutex);
        return owners.size();
    }

    bool owns(const detail::LockState& state) {
        std::lock_guard lock(owners_mutex);
        auto it = owners.find(state.resource);
        return it != owners.end() && it->second == state.token && !state.ended.load();
    }

    using Acquired = detail::Acquired;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only) {
        if (auto ec = detail::check_lock_request(
                resource, options, self->options.max_resource_bytes, self->options.logger)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const TimeSource& time = *self->options.time;
        auto [queue_ec, hold] = co_await detail::queue_locally(
            self->queue, resource, options, try_only, time.now() + options.wait, time);
        if (queue_ec) {
            co_return Acquired{queue_ec, LockGuard{}};
        }
        auto token = detail::random_token();
        {
            std::lock_guard lock(self->owners_mutex);
            self->owners[resource] = token;
        }
        co_return Acquired{
            error_code{},
            detail::make_held_lock(self->executor, self, std::move(resource), std::move(token),
                                   self->fence.fetch_add(1) + 1, options, std::move(hold),
                                   time.now(), self->options.time, self->options.logger)};
    }

    asio::any_io_executor executor;
    KeyedMutex<std::string> queue;  // FIFO waiting per resource
    LocalLockServiceOptions options;
    std::atomic<std::uint64_t> fence{0};
    std::mutex owners_mutex;
    std::unordered_map<std::string, std::string> owners;  // resource → holder's token
};

void validate(const LocalLockServiceOptions& options) {
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument("LocalLockServiceOptions.max_resource_bytes must be > 0");
    }
}

LocalLockService::LocalLockService(asio::any_io_executor executor,
                                   LocalLockServiceOptions options) {
    validate(options);
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

LocalLockService::~LocalLockService() = default;

std::size_t LocalLockService::held() const {
    return impl_->owner_entries();
}

asio::any_io_executor LocalLockService::get_executor() const noexcept {
    return impl_->executor;
}

void LocalLockService::lock_erased(std::string resource, LockOptions options, bool try_only,
                                   LockDiagnostics* diagnostics, LockHandler handler) {
    detail::spawn_lock_operation(impl_->executor,
                                 Impl::lock(impl_, std::move(resource), options, try_only),
                                 std::move(handler), diagnostics);
}

}  // namespace keyedpool
