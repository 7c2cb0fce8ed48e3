// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_FLEET_PERMITS_HPP
#define KEYEDPOOL_DETAIL_POOL_FLEET_PERMITS_HPP

/// \file
/// The permits a pool's clients hold from a `PermitSource`: taken by a build before its factory
/// call, held by the client while it is cached, released when it is closed, and watched: a lost
/// permit closes its client.

#include <keyedpool/permit_source.hpp>
#include <keyedpool/result_code.hpp>

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace keyedpool::detail::pool {

template <typename Key, typename Client>
class FleetPermits {
  public:
    explicit FleetPermits(PermitSource<Key> source) : source_(std::move(source)) {
        validate(source_);
    }
    FleetPermits(const FleetPermits&) = delete;
    FleetPermits& operator=(const FleetPermits&) = delete;

    /// Takes the permits a client of `key` costs, waiting at most `wait`. Success with a guard;
    /// success with an empty guard when the service failed and the source fails open (logged,
    /// counted); `ResultCode::pool_exhausted` when none came within `wait`; `operation_aborted`
    /// when the build was cancelled; else the service's error (fail closed) or
    /// `invalid_argument` (`permit_for` threw or asked for an impossible count).
    boost::asio::awaitable<std::pair<boost::system::error_code, PermitGuard>> acquire(
        const Key& key, std::chrono::steady_clock::duration wait, spdlog::logger& log,
        const std::string& key_text) {
        namespace asio = boost::asio;
        using Result = std::pair<boost::system::error_code, PermitGuard>;
        ClientPermit ask;
        try {
            ask = source_.permit_for(key);
        } catch (const std::exception& e) {
            log.warn("keyedpool: PermitSource.permit_for({}) threw: {}", key_text, e.what());
            co_return Result{ResultCode::invalid_argument, PermitGuard{}};
        }
        SemaphoreOptions options;
        options.limit = ask.limit;
        options.permits = ask.permits;
        options.wait = wait;
        options.lease = source_.lease;
        options.auto_renew = true;
        LockDiagnostics why;
        auto [ec, guard] = co_await source_.service->async_acquire(
            ask.resource, options, why, asio::as_tuple(asio::use_awaitable));
        if (!ec || ec == asio::error::operation_aborted) {
            co_return Result{ec, std::move(guard)};
        }
        if ((ec == ResultCode::lock_timeout || ec == ResultCode::lock_busy) && why.cause &&
            why.cause != ResultCode::lock_busy) {
            // Not a full budget: the wait was spent retrying a service that could not be used.
            ec = why.cause;
        }
        if (ec == ResultCode::lock_timeout || ec == ResultCode::lock_busy) {
            log.info("keyedpool: no permit of {} free for {} within wait_timeout", ask.resource,
                     key_text);
            co_return Result{ResultCode::pool_exhausted, PermitGuard{}};
        }
        if (ec != ResultCode::invalid_argument &&
            source_.when_service_fails == PermitServiceDown::fail_open) {
            without_permit_.fetch_add(1, std::memory_order_relaxed);
            log.warn(
                "keyedpool: the permit service failed ({}); building {} without a permit of {} "
                "(fail open)",
                ec.message(), key_text, ask.resource);
            co_return Result{boost::system::error_code{}, PermitGuard{}};
        }
        log.warn("keyedpool: no permit of {} for {}: {} ({})", ask.resource, key_text, ec.message(),
                 ec.to_string());
        co_return Result{ec, PermitGuard{}};
    }

    /// `client` (of `key`) holds `permit` from now on; `on_lost(key, client)` runs (through
    /// `executor`) if the permit is lost before `release(client)`. An empty guard (a build that
    /// failed open) holds nothing.
    template <typename OnLost>
    void hold(const Key& key, const Client* client, PermitGuard permit,
              const boost::asio::any_io_executor& executor, OnLost on_lost) {
        if (!permit.owns_permits()) {
            return;
        }
        auto held = std::make_shared<PermitGuard>(std::move(permit));
        {
            std::lock_guard lock(mutex_);
            held_.emplace(client, held);
        }
        held->async_wait_lost(boost::asio::bind_executor(
            executor,
            [key, client, on_lost = std::move(on_lost)](boost::system::error_code ec) mutable {
                if (!ec) {
                    on_lost(key, client);
                }
            }));
    }

    /// `client` was closed: its permits go back (in the background).
    void release(const Client* client) noexcept {
        std::shared_ptr<PermitGuard> held;
        {
            std::lock_guard lock(mutex_);
            auto it = held_.find(client);
            if (it == held_.end()) {
                return;
            }
            held = std::move(it->second);
            held_.erase(it);
        }
        try {
            held->async_release(boost::asio::detached);
        } catch (...) {  // out of memory: the lease ends by itself
        }
    }

    void count_lost() noexcept { lost_.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t builds_without_permit() const noexcept {
        return without_permit_.load(std::memory_order_relaxed);
    }
    std::uint64_t permits_lost() const noexcept { return lost_.load(std::memory_order_relaxed); }
    /// Clients holding permits now.
    std::size_t holders() const {
        std::lock_guard lock(mutex_);
        return held_.size();
    }

  private:
    const PermitSource<Key> source_;
    mutable std::mutex mutex_;
    std::unordered_map<const Client*, std::shared_ptr<PermitGuard>> held_;  // under mutex_
    std::atomic<std::uint64_t> without_permit_{0};
    std::atomic<std::uint64_t> lost_{0};
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_FLEET_PERMITS_HPP
