// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/semaphore_service.hpp>

#include "../core/lock_common.hpp"
#include "contend.hpp"
#include "lease_client.hpp"
#include "semaphore_scripts.hpp"

#include <boost/asio/this_coro.hpp>

#include <optional>
#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using detail::clock;
using detail::lease_ms;
using detail::LeaseClient;
using detail::Script;

/// The six keys of a resource's permits and queue, in the order the scripts take them.
std::vector<std::string> semaphore_keys(const std::string& key) {
    return {key + ":holders", key + ":weights", key + ":queue",
            key + ":queued",  key + ":asks",    key + ":limit"};
}

}  // namespace

struct RedisSemaphoreService::Impl : keyedpool::detail::LockBackend,
                                     std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor ex, RedisSemaphoreServiceOptions opts)
        : executor(ex),
          options(opts),
          redis(std::make_shared<LeaseClient>(std::move(ex), std::move(opts))) {}

    std::string key(const std::string& resource) const {
        return options.key_prefix + "{" + resource + "}";
    }
    std::string channel(const std::string& resource) const { return key(resource) + ":granted"; }

    asio::awaitable<lease::AttemptResult> try_acquire(const std::string& resource,
                                                      const std::string& token,
                                                      const SemaphoreOptions& o, bool queue,
                                                      clock::time_point deadline) {
        std::vector<std::string> args{token,
                                      std::to_string(o.permits),
                                      std::to_string(lease_ms(o.lease)),
                                      std::to_string(queue ? redis->queue_place_ms() : 0),
                                      std::to_string(o.limit),
                                      channel(resource)};
        auto [ec, reply] = co_await redis->run(acquire_script, semaphore_keys(key(resource)),
                                               std::move(args), deadline);
        co_return detail::read_attempt(ec, reply);
    }

    asio::awaitable<error_code> renew(keyedpool::detail::LockState& state) override {
        std::vector<std::string> args{state.token, std::to_string(lease_ms(state.lease))};
        // A renewal answered after the lease ended is of no use: the permits are lost by then.
        auto [ec, reply] =
            co_await redis->run(renew_script, semaphore_keys(key(state.resource)), std::move(args),
                                std::min(redis->request_deadline(), state.valid_until));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    asio::awaitable<error_code> release(keyedpool::detail::LockState& state) override {
        std::vector<std::string> args{state.token, channel(state.resource)};
        auto [ec, reply] = co_await redis->run(release_script, semaphore_keys(key(state.resource)),
                                               std::move(args), redis->request_deadline());
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    using Acquired = std::pair<error_code, PermitGuard>;

    static asio::awaitable<Acquired> acquire(std::shared_ptr<Impl> self, std::string resource,
                                             SemaphoreOptions options, bool try_only,
                                             LockDiagnostics* diagnostics) {
        namespace kd = keyedpool::detail;
        if (auto ec = kd::check_semaphore_request(
                resource, options, self->options.max_resource_bytes, self->options.logger)) {
            co_return Acquired{ec, PermitGuard{}};
        }
        const auto& time = self->redis->time();
        const auto started = time->now();
        auto executor = co_await asio::this_coro::executor;
        LeaseClient::Acquisition acquisition{*self->redis,
                                             executor,
                                             kd::random_token(),
                                             self->key(resource),
                                             self->channel(resource),
                                             self->release_script,
                                             &semaphore_keys};
        const std::string& token = acquisition.token;
        co_return co_await detail::contend<Acquired>(
            acquisition, self->redis->acquisition_params(options.wait, options.lease, try_only),
            started, resource, options.permits, diagnostics,
            [&](clock::time_point until, bool queue) {
                return self->try_acquire(resource, token, options, queue, until);
            },
            [&](std::uint64_t, clock::time_point held_from) {
                return Acquired{
                    error_code{},
                    PermitGuard{kd::make_held_lease(self->executor, self, resource, token, 0,
                                                    options.lease, options.auto_renew, nullptr,
                                                    held_from, time, self->options.logger),
                                options.permits}};
            });
    }

    asio::any_io_executor executor;
    RedisSemaphoreServiceOptions options;
    std::shared_ptr<LeaseClient> redis;
    Script acquire_script{semaphore_scripts::acquire, false, true};
    Script renew_script{semaphore_scripts::renew, false, true};
    Script release_script{semaphore_scripts::release, false, false};  // also gives up acquisitions
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
    impl_->redis->shutdown();
}

asio::any_io_executor RedisSemaphoreService::get_executor() const noexcept {
    return impl_->executor;
}

std::uint64_t RedisSemaphoreService::requests_sent() const noexcept {
    return impl_->redis->requests_sent();
}

void RedisSemaphoreService::acquire_erased(std::string resource, SemaphoreOptions options,
                                           bool try_only, LockDiagnostics* diagnostics,
                                           PermitHandler handler) {
    keyedpool::detail::spawn_lock_operation(
        impl_->executor, Impl::acquire(impl_, std::move(resource), options, try_only, diagnostics),
        std::move(handler), diagnostics);
}

}  // namespace keyedpool::redis
