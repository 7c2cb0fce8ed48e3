// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../core/lock_common.hpp"
#include "contend.hpp"
#include "lease_client.hpp"
#include "lock_scripts.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using detail::clock;
using detail::lease_ms;
using detail::LeaseClient;
using detail::Script;

/// The five keys of a resource's lock and queue, in the order the scripts take them.
std::vector<std::string> lock_keys(const std::string& key) {
    return {key, key + ":fence", key + ":queue", key + ":queued", key + ":leases"};
}

}  // namespace

struct RedisLockService::Impl : keyedpool::detail::LockBackend, std::enable_shared_from_this<Impl> {
    Impl(asio::any_io_executor ex, RedisLockServiceOptions opts)
        : executor(ex),
          options(opts),
          redis(std::make_shared<LeaseClient>(std::move(ex), std::move(opts))),
          local_queue(executor) {}

    std::string lock_key(const std::string& resource) const {
        return options.key_prefix + "{" + resource + "}";
    }

    asio::awaitable<lease::AttemptResult> try_acquire(const std::string& resource,
                                                      const std::string& token,
                                                      clock::duration lease, bool queue,
                                                      clock::time_point deadline) {
        std::vector<std::string> args{token, std::to_string(lease_ms(lease)),
                                      std::to_string(queue ? redis->queue_place_ms() : 0),
                                      lock_key(resource) + ":released"};
        auto [ec, reply] =
            co_await redis->run(acquire, lock_keys(lock_key(resource)), std::move(args), deadline);
        co_return detail::read_attempt(ec, reply);
    }

    asio::awaitable<error_code> renew(keyedpool::detail::LockState& state) override {
        std::vector<std::string> keys{lock_key(state.resource)};
        std::vector<std::string> args{state.token, std::to_string(lease_ms(state.lease))};
        // A renewal answered after the lease ended is of no use: the lock is lost by then.
        auto [ec, reply] =
            co_await redis->run(renew_script, std::move(keys), std::move(args),
                                std::min(redis->request_deadline(), state.valid_until));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    /// The release script's arguments for `token` (it also gives back an acquisition that ended
    /// without the lock: its queue place, and the lock if a grant came too late).
    std::vector<std::string> release_args(const std::string& resource,
                                          const std::string& token) const {
        return {token, lock_key(resource) + ":released"};
    }

    asio::awaitable<error_code> release(keyedpool::detail::LockState& state) override {
        auto [ec, reply] = co_await redis->run(release_script, lock_keys(lock_key(state.resource)),
                                               release_args(state.resource, state.token),
                                               redis->request_deadline());
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    // ---- the lock operation -------------------------------------------------------------------

    using Acquired = keyedpool::detail::Acquired;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only,
                                          LockDiagnostics* diagnostics) {
        namespace kd = keyedpool::detail;
        if (auto ec = kd::check_lock_request(resource, options, self->options.max_resource_bytes,
                                             self->options.logger)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const auto& time = self->redis->time();
        const auto started = time->now();  // the wait covers the local queue and the server
        auto executor = co_await asio::this_coro::executor;

        // 1. Queue locally: one contender per resource and process.
        auto queued_locally = co_await kd::queue_locally(self->local_queue, resource, options,
                                                         try_only, started + options.wait, *time);
        if (queued_locally.first) {
            co_return Acquired{queued_locally.first, LockGuard{}};
        }
        auto hold = std::move(queued_locally.second);  // not a structured binding: captured below

        // 2. Contend in Redis: try, subscribe, try again, sleep until a release message (or the
        //    holder's lease, our deadline, or the re-check interval).
        std::string key = self->lock_key(resource);
        LeaseClient::Acquisition acquisition{*self->redis, executor,          kd::random_token(),
                                             key,          key + ":released", self->release_script,
                                             &lock_keys};
        const std::string& token = acquisition.token;
        co_return co_await detail::contend<Acquired>(
            acquisition, self->redis->acquisition_params(options.wait, options.lease, try_only),
            started, resource, 0, diagnostics,
            [&](clock::time_point until, bool queue) {
                return self->try_acquire(resource, token, options.lease, queue, until);
            },
            [&](std::uint64_t fence, clock::time_point held_from) {
                return Acquired{
                    error_code{},
                    kd::make_held_lock(self->executor, self, resource, token, fence, options,
                                       std::move(hold), held_from, time, self->options.logger)};
            });
    }

    asio::any_io_executor executor;
    RedisLockServiceOptions options;
    std::shared_ptr<LeaseClient> redis;
    KeyedMutex<std::string> local_queue;
    Script acquire{lock_scripts::acquire, true, true};
    Script renew_script{lock_scripts::renew, false, true};
    Script release_script{lock_scripts::release, true, false};  // also gives up acquisitions
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
    impl_->redis->shutdown();
}

std::uint64_t RedisLockService::lock_requests_sent() const noexcept {
    return impl_->redis->requests_sent();
}

void RedisLockService::lock_erased(std::string resource, LockOptions options, bool try_only,
                                   LockDiagnostics* diagnostics, LockHandler handler) {
    keyedpool::detail::spawn_lock_operation(
        impl_->executor, Impl::lock(impl_, std::move(resource), options, try_only, diagnostics),
        std::move(handler), diagnostics);
}

}  // namespace keyedpool::redis
