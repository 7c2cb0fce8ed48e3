// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_PERMIT_SOURCE_HPP
#define KEYEDPOOL_PERMIT_SOURCE_HPP

/// \file
/// `PermitSource<Key>`: a budget of clients shared beyond one pool — typically by a whole fleet of
/// processes through `redis::RedisSemaphoreService` — that a `KeyedClientPool` builds within.

#include <keyedpool/semaphore.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace keyedpool {

/// The permits one client of a key costs, and of which budget.
struct ClientPermit {
    /// The semaphore resource, e.g. the server the client connects to ("db-1:3000"): clients of
    /// keys that name the same resource share its limit.
    std::string resource;
    /// How many permits the resource has (the server's connection budget for the fleet).
    std::size_t limit = 1;
    /// How many permits one client of the key costs (e.g. the sockets it opens).
    std::size_t permits = 1;
};

/// What a build does when the permit service itself fails (unreachable, timed out — anything but
/// "no permit free within `wait_timeout`", which is always `ResultCode::pool_exhausted`).
enum class PermitServiceDown {
    /// The get fails with the permit service's typed error (the default: the budget is never
    /// exceeded, at the price of availability while the service is down).
    fail_closed,
    /// Build without a permit, log a warning, and count it in `PoolStats::builds_without_permit`
    /// (availability first: while the service is down, the budget is not enforced).
    fail_open,
};

/// A pool's permit source: before its factory is called, a build takes `permit_for(key)`'s
/// permits from `service` (waiting at most `PoolOptions::wait_timeout`, then
/// `ResultCode::pool_exhausted`); the client holds them while cached (renewed every `lease / 3`),
/// and they are released when it is closed — evicted, invalidated, replaced as unhealthy, or at
/// shutdown. When a permit is lost (its lease could not be renewed), the client is closed and the
/// next get rebuilds it.
template <typename Key>
struct PermitSource {
    /// Where permits come from: `redis::RedisSemaphoreService` for a fleet-wide budget, or
    /// `LocalSemaphoreService` to share one budget among several pools of a process. Must not be
    /// null; must outlive the pool's clients.
    std::shared_ptr<SemaphoreService> service;
    /// The permits a client of the key costs. Must not be empty; called once per build, on the
    /// build's executor (it must not block).
    std::function<ClientPermit(const Key&)> permit_for;
    /// The lease of a client's permits: a process that dies gives them back this long after its
    /// last renewal. Must be > 0.
    std::chrono::steady_clock::duration lease = std::chrono::seconds(30);
    /// See `PermitServiceDown`.
    PermitServiceDown when_service_fails = PermitServiceDown::fail_closed;
};

/// Throws `std::invalid_argument` naming the first invalid field.
template <typename Key>
void validate(const PermitSource<Key>& source) {
    if (!source.service) {
        throw std::invalid_argument("PermitSource.service must not be null");
    }
    if (!source.permit_for) {
        throw std::invalid_argument("PermitSource.permit_for must not be empty");
    }
    if (source.lease <= std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument("PermitSource.lease must be > 0");
    }
}

}  // namespace keyedpool

#endif  // KEYEDPOOL_PERMIT_SOURCE_HPP
