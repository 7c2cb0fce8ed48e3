// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../core/lock_common.hpp"
#include "lease_backend.hpp"
#include "lock_scripts.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// The five keys of a resource's lock and queue, in the order the scripts take them.
std::vector<std::string> lock_keys(const std::string& key) {
    return {key, key + ":fence", key + ":queue", key + ":queued", key + ":leases"};
}

/// The lock's own key: all its renewal needs.
std::vector<std::string> lock_key_only(const std::string& key) {
    return {key};
}

detail::LeaseLayout lock_layout() {
    return {&lock_keys,
            &lock_key_only,
            ":released",
            {lock_scripts::acquire, true, true},
            {lock_scripts::renew, false, true},
            {lock_scripts::release, true, false}};
}

}  // namespace

/// A lock: a lease of one holder, with a fencing token, and one contender per resource and process
/// (the local queue: the others wait in-process, not on the server).
///
/// A holder that releases while another caller of this process waits for the resource leaves the
/// server lock to it (`passed`) instead of deleting it: that caller, the next in the local queue,
/// takes it over in one request (the pass script: its own token, lease and fencing token) — a
/// hand-over inside the process costs one round trip, where release + acquire cost two. Callers
/// of other processes queued on the server still come first: the script then releases to them.
struct RedisLockService::Impl : detail::RedisLeaseBackend {
    Impl(asio::any_io_executor ex, RedisLockServiceOptions opts)
        : RedisLeaseBackend(ex, std::move(opts), lock_layout()), local_queue(std::move(ex)) {}

    using Acquired = keyedpool::detail::Acquired;
    using clock = detail::clock;

    asio::awaitable<error_code> release(keyedpool::detail::LockState& state) override {
        // Still valid on our clock: the server still holds it for our token (the drift allowance).
        if (local_queue.users(state.resource) > 1 && state.time->now() < state.valid_until) {
            std::lock_guard lock(passed_mutex);
            passed[state.resource] = state.token;
            co_return error_code{};  // the caller's local hold goes next: the waiter takes over
        }
        co_return co_await RedisLeaseBackend::release(state);
    }

    /// The token a holder of this process left the server lock of `resource` with, if any.
    std::optional<std::string> take_passed(const std::string& resource) {
        std::lock_guard lock(passed_mutex);
        auto it = passed.find(resource);
        if (it == passed.end()) {
            return std::nullopt;
        }
        std::string token = std::move(it->second);
        passed.erase(it);
        return token;
    }

    /// A wait in the local queue ended without the local hold: when nobody holds or waits for it
    /// any more, a lock left to this process is released (else the next local holder takes it).
    void give_back_unclaimed(const std::string& resource) {
        if (local_queue.users(resource) != 0) {
            return;
        }
        if (auto left = take_passed(resource)) {
            redis().give_back(release_script(), lock_keys(key(resource)),
                              {std::move(*left), channel(resource)});
        }
    }

    /// Takes over the lock `previous` left to this caller, under a new token, before `until`. The
    /// guard when taken over; nullopt when not (the lock went to another process's waiter, or
    /// expired, or the request failed: whatever it left is given back) — the caller then contends
    /// as usual.
    static asio::awaitable<std::optional<Acquired>> take_over(
        std::shared_ptr<Impl> self, const std::string& resource, std::string previous,
        const LockOptions& options, keyedpool::detail::LocalQueue::Guard& hold,
        clock::time_point until) {
        namespace kd = keyedpool::detail;
        auto& redis = self->redis();
        Impl& impl = *self;
        std::string token = kd::random_token();
        const auto& time = impl.time();
        const auto sent_at = time->now();
        const std::string channel = impl.channel(resource);
        std::vector<std::string> args{previous, channel, token,
                                      std::to_string(detail::lease_ms(options.lease))};
        auto [ec, reply] = co_await redis.run(impl.pass_script, lock_keys(impl.key(resource)),
                                              std::move(args), until);
        const auto taken = detail::read_attempt(ec, reply);
        if (taken.ec) {
            // It may have run: give back both tokens (each only if the server holds it).
            redis.give_back(impl.release_script(), lock_keys(impl.key(resource)),
                            {std::move(previous), channel});
            redis.give_back(impl.release_script(), lock_keys(impl.key(resource)),
                            {std::move(token), channel});
            co_return std::nullopt;
        }
        if (!taken.acquired) {
            co_return std::nullopt;
        }
        if (lease::validity_from(options.lease, sent_at) - time->now() < options.lease / 2) {
            // Came too late to be of use (as for any grant: half the lease left, at least).
            redis.give_back(impl.release_script(), lock_keys(impl.key(resource)),
                            {std::move(token), channel});
            co_return std::nullopt;
        }
        co_return Acquired{
            error_code{},
            kd::make_held_lock(impl.executor(), self, resource, std::move(token), taken.fence,
                               options, std::move(hold), sent_at, time, impl.options().logger)};
    }

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
            self->give_back_unclaimed(resource);
            co_return Acquired{queued_locally.first, LockGuard{}};
        }
        auto hold = std::move(queued_locally.second);  // not a structured binding: captured below

        // 2. The previous holder of this process may have left the lock to us.
        if (auto previous = self->take_passed(resource)) {
            // Within the wait (a request that does not wait has its request timeout).
            const auto until =
                options.wait > clock::duration::zero()
                    ? std::min(self->redis().request_deadline(), started + options.wait)
                    : self->redis().request_deadline();
            if (auto taken = co_await take_over(self, resource, std::move(*previous), options, hold,
                                                until)) {
                co_return std::move(*taken);
            }
        }

        // 3. Contend in Redis: try, subscribe, try again, sleep until a hand-over (or the
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
    detail::Script pass_script{lock_scripts::pass, true, true};
    std::mutex passed_mutex;
    std::unordered_map<std::string, std::string> passed;  // resource → the token that left it here
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
