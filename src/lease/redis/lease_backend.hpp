// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_LEASE_BACKEND_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_LEASE_BACKEND_HPP

/// \file
/// One body for every lease kept on Redis. A lock and permits of a semaphore differ only in a
/// `LeaseLayout` — their keys, their hand-over channel, their scripts and their acquire script's
/// arguments — and in the guard a grant builds; renewal, release, giving back and the acquisition
/// loop are this one class's.

#include <keyedpool/lock_guard.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../core/lock_common.hpp"
#include "../core/lock_state.hpp"
#include "contend.hpp"
#include "lease_client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace keyedpool::redis::detail {

/// What sets one kind of lease apart on Redis.
struct LeaseLayout {
    /// A resource's keys, in the order its scripts take them, from `prefix{resource}`.
    LeaseClient::KeysOf keys_of;
    /// The keys the renew script takes (a lock's renewal needs only the lock's own key).
    LeaseClient::KeysOf renew_keys_of;
    /// The hand-over channel's name after `prefix{resource}`.
    const char* channel_suffix;
    /// acquire(keys, ARGV as `acquire_args` builds them): {1, fence} or {0, ms to wait};
    /// renew(keys, {token, lease ms}): 1 or 0; release(keys, {token, channel}): 1 or 0, and it
    /// also gives back what an acquisition that ended without its lease holds.
    Script acquire;
    Script renew;
    Script release;
};

class RedisLeaseBackend : public keyedpool::detail::LockBackend {
  public:
    /// `options` are validated by the caller.
    RedisLeaseBackend(boost::asio::any_io_executor executor, RedisLockServiceOptions options,
                      LeaseLayout layout)
        : layout_(std::move(layout)),
          redis_(std::make_shared<LeaseClient>(std::move(executor), std::move(options))) {}

    const boost::asio::any_io_executor& executor() const noexcept { return redis_->executor(); }
    const RedisLockServiceOptions& options() const noexcept { return redis_->options(); }
    LeaseClient& redis() noexcept { return *redis_; }
    const std::shared_ptr<const TimeSource>& time() const noexcept { return redis_->time(); }
    /// The release script (it also gives back an acquisition that ended without its lease).
    Script& release_script() noexcept { return layout_.release; }
    /// Closes the connections (the service is going away; a give-back still running ends).
    void shutdown() { redis_->shutdown(); }

    /// `prefix{resource}`: every key of the resource shares the hash tag (one cluster slot).
    std::string key(const std::string& resource) const {
        return options().key_prefix + "{" + resource + "}";
    }
    std::string channel(const std::string& resource) const {
        return key(resource) + layout_.channel_suffix;
    }

    boost::asio::awaitable<boost::system::error_code> renew(
        keyedpool::detail::LockState& state) override;
    boost::asio::awaitable<boost::system::error_code> release(
        keyedpool::detail::LockState& state) override;

    /// One acquisition of `resource` on the server, started at `started`: `acquire_args(token,
    /// queue_place_ms)` are the acquire script's arguments (`queue_place_ms` 0: do not queue);
    /// `grant(token, fence, held_from)` builds the result of a grant. `permits`: 0 for a lock.
    template <typename Result, typename AcquireArgs, typename Grant>
    boost::asio::awaitable<Result> acquire(const std::string& resource, clock::duration wait,
                                           clock::duration lease, bool try_only,
                                           clock::time_point started, std::size_t permits,
                                           LockDiagnostics* diagnostics, AcquireArgs acquire_args,
                                           Grant grant) {
        auto executor = co_await boost::asio::this_coro::executor;
        LeaseClient::Acquisition acquisition{
            *redis_,        executor,          keyedpool::detail::random_token(),
            key(resource),  channel(resource), layout_.release,
            layout_.keys_of};
        co_return co_await contend<Result>(
            acquisition, redis_->acquisition_params(wait, lease, try_only), started, resource,
            permits, diagnostics,
            [&](clock::time_point until, bool queue) {
                return attempt(
                    acquisition,
                    acquire_args(acquisition.token, queue ? redis_->queue_place_ms() : 0LL), until);
            },
            [&](std::uint64_t fence, clock::time_point held_from) {
                return grant(acquisition.token, fence, held_from);
            });
    }

  private:
    boost::asio::awaitable<lease::AttemptResult> attempt(
        const LeaseClient::Acquisition& acquisition, std::vector<std::string> args,
        clock::time_point until);

    LeaseLayout layout_;
    std::shared_ptr<LeaseClient> redis_;
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_LEASE_BACKEND_HPP
