// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_POOL_STATS_HPP
#define KEYEDPOOL_POOL_STATS_HPP

#include <cstdint>

namespace keyedpool {

/// A snapshot of a pool's counters (`KeyedClientPool::stats()`). Counters only grow; `waiters`,
/// `live_clients` and `builds_in_progress` are current values. Each field is read atomically, but
/// fields are not read at one instant, so on a busy pool they may be mutually inconsistent by a few
/// operations.
struct PoolStats {
    std::uint64_t hits = 0;            ///< gets and try_gets served from the cache without waiting
    std::uint64_t misses = 0;          ///< gets that took the slow path (joined or started a build)
    std::uint64_t builds = 0;          ///< clients the factory produced
    std::uint64_t build_failures = 0;  ///< factory calls that failed (error, exception, timeout)
    std::uint64_t waiters = 0;         ///< gets currently on the slow path
    std::uint64_t live_clients = 0;    ///< clients produced and not yet closed
    std::uint64_t evictions = 0;       ///< clients closed because they were idle
    std::uint64_t closes = 0;          ///< clients closed, for any reason
    /// Builds running now (waiting for a permit, or in the factory), including factory calls that
    /// outlived their gets because they ignore cancellation. 0 once a shutdown has drained.
    std::uint64_t builds_in_progress = 0;
    /// With a permit source that fails open: builds that went ahead without a permit because the
    /// permit service failed.
    std::uint64_t builds_without_permit = 0;
    /// With a permit source: clients whose permit was lost (lease not renewed); each was closed.
    std::uint64_t permits_lost = 0;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_POOL_STATS_HPP
