// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../core/lock_common.hpp"
#include "lease_backend.hpp"
#include "lock_scripts.hpp"

#include <boost/asio/this_coro.hpp>

#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// The five keys of a resource's lock and queue, in the order the scripts take them.
std::vector<std::string> lock_keys(const std::string& key) {
    return {key, key + ":fence", key + ":queue", key + ":queued", key + ":leases"};
}

detail::LeaseLayout lock_layout() {
    return {&lock_keys,
            ":released",
            {lock_scripts::acquire, true, true},
            {lock_scripts::renew, false, true},
            {lock_scripts::release, true, false}};
}

}  // namespace

/// A lock: a lease of one holder, with a fencing token, and one contender per resource and process
/// (the local queue: the others wait in-process, not on the server).
struct RedisLockService::Impl : detail::RedisLeaseBackend {
    Impl(asio::any_io_executor ex, RedisLockServiceOptions opts)
        : RedisLeaseBackend(ex, std::move(opts), lock_layout()), local_queue(std::move(ex)) {}

    using Acquired = keyedpool::detail::Acquired;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only,
                                          LockDiagnostics* diagnostics) {
        namespace kd = keyedpool::detail;
        if (auto ec = kd::check_lock_request(resource, options, self->options().max_resource_bytes,
                                             self->options().logger)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const auto& time = self->time();
        const auto started = time->now();  // the wait covers the local queue and the server

        // 1. Queue locally: one contender per resource and process.
        auto queued_locally = co_await kd::queue_locally(self->local_queue, resource, options,
                                                         try_only, started + options.wait, *time);
        if (queued_locally.first) {
            co_return Acquired{queued_locally.first, LockGuard{}};
        }
        auto hold = std::move(queued_locally.second);  // not a structured binding: captured below

        // 2. Contend in Redis: try, subscribe, try again, sleep until a hand-over (or the
        //    holder's lease, our deadline, or the re-check interval).
        const std::string channel = self->channel(resource);
        co_return co_await self->acquire<Acquired>(
            resource, options.wait, options.lease, try_only, started, 0, diagnostics,
            [&](const std::string& token, long long queue_place_ms) {
                return std::vector<std::string>{token,
                                                std::to_string(detail::lease_ms(options.lease)),
                                                std::to_string(queue_place_ms), channel};
            },
            [&](const std::string& token, std::uint64_t fence,
                detail::clock::time_point held_from) {
                return Acquired{
                    error_code{},
                    kd::make_held_lock(self->executor(), self, resource, token, fence, options,
                                       std::move(hold), held_from, time, self->options().logger)};
            });
    }

    KeyedMutex<std::string> local_queue;
};

void validate(const RedisLockServiceOptions& options) {
    detail::validate(options, "RedisLockServiceOptions");
}

RedisLockService::RedisLockService(asio::any_io_executor executor,
                                   RedisLockServiceOptions options) {
    validate(options);
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

RedisLockService::~RedisLockService() {
    impl_->shutdown();
}

std::uint64_t RedisLockService::lock_requests_sent() const noexcept {
    return impl_->redis().requests_sent();
}

void RedisLockService::lock_erased(std::string resource, LockOptions options, bool try_only,
                                   LockDiagnostics* diagnostics, LockHandler handler) {
    keyedpool::detail::spawn_lock_operation(
        impl_->executor(), Impl::lock(impl_, std::move(resource), options, try_only, diagnostics),
        std::move(handler), diagnostics);
}

}  // namespace keyedpool::redis
