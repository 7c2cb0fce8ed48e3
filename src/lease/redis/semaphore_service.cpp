// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/semaphore_service.hpp>

#include "../core/lock_common.hpp"
#include "lease_backend.hpp"
#include "semaphore_scripts.hpp"

#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// The six keys of a resource's permits and queue, in the order the scripts take them.
std::vector<std::string> semaphore_keys(const std::string& key) {
    return {key + ":holders", key + ":weights", key + ":queue",
            key + ":queued",  key + ":asks",    key + ":limit"};
}

detail::LeaseLayout semaphore_layout() {
    return {&semaphore_keys,
            &semaphore_keys,
            ":granted",
            {semaphore_scripts::acquire, false, true},
            {semaphore_scripts::renew, false, true},
            {semaphore_scripts::release, false, false}};
}

}  // namespace

/// Permits of a semaphore: leases of several holders up to a limit, every waiter on the server
/// (a release hands over to every queue head that fits).
struct RedisSemaphoreService::Impl : detail::RedisLeaseBackend {
    Impl(asio::any_io_executor ex, RedisSemaphoreServiceOptions opts)
        : RedisLeaseBackend(std::move(ex), std::move(opts), semaphore_layout()) {}

    using Acquired = std::pair<error_code, PermitGuard>;

    static asio::awaitable<Acquired> acquire(std::shared_ptr<Impl> self, std::string resource,
                                             SemaphoreOptions options, bool try_only,
                                             LockDiagnostics* diagnostics) {
        namespace kd = keyedpool::detail;
        if (auto ec = kd::check_semaphore_request(
                resource, options, self->options().max_resource_bytes, self->options().logger)) {
            co_return Acquired{ec, PermitGuard{}};
        }
        const auto& time = self->time();
        const std::string channel = self->channel(resource);
        co_return co_await self->RedisLeaseBackend::acquire<Acquired>(
            resource, options.wait, options.lease, try_only, time->now(), options.permits,
            diagnostics,
            [&](const std::string& token, long long queue_place_ms) {
                return std::vector<std::string>{token,
                                                std::to_string(options.permits),
                                                std::to_string(detail::lease_ms(options.lease)),
                                                std::to_string(queue_place_ms),
                                                std::to_string(options.limit),
                                                channel};
            },
            [&](const std::string& token, std::uint64_t, detail::clock::time_point held_from) {
                return Acquired{
                    error_code{},
                    PermitGuard{kd::make_held_lease(self->executor(), self, resource, token, 0,
                                                    options.lease, options.auto_renew, nullptr,
                                                    held_from, time, self->options().logger),
                                options.permits}};
            });
    }
};

void validate(const RedisSemaphoreServiceOptions& options) {
    detail::validate(options, "RedisSemaphoreServiceOptions");
}

RedisSemaphoreService::RedisSemaphoreService(asio::any_io_executor executor,
                                             RedisSemaphoreServiceOptions options) {
    validate(options);
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

RedisSemaphoreService::~RedisSemaphoreService() {
    impl_->shutdown();
}

asio::any_io_executor RedisSemaphoreService::get_executor() const noexcept {
    return impl_->executor();
}

std::uint64_t RedisSemaphoreService::requests_sent() const noexcept {
    return impl_->redis().requests_sent();
}

void RedisSemaphoreService::acquire_erased(std::string resource, SemaphoreOptions options,
                                           bool try_only, LockDiagnostics* diagnostics,
                                           PermitHandler handler) {
    keyedpool::detail::spawn_lock_operation(
        impl_->executor(),
        Impl::acquire(impl_, std::move(resource), options, try_only, diagnostics),
        std::move(handler), diagnostics);
}

}  // namespace keyedpool::redis
