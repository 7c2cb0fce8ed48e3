// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_POOL_OPTIONS_HPP
#define KEYEDPOOL_POOL_OPTIONS_HPP

/// \file
/// Configuration of `KeyedClientPool`: plain structs with documented defaults, validated once when
/// the pool is constructed.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace keyedpool {

/// How long the pool refuses to rebuild a key's client after a failed build. The n-th consecutive
/// failure sets the key's retry deadline to `min(initial * multiplier^(n-1), max)`, scaled by a
/// random factor in `[1 - jitter, 1 + jitter]`. Gets for that key before the deadline fail at once
/// with `ResultCode::backoff`; the first get after it rebuilds.
struct BackoffOptions {
    /// Delay after the first failure. 0 disables backoff (every get after a failure rebuilds); the
    /// gets that were already waiting for the failed build still all receive its error. Must be >=
    /// 0.
    std::chrono::steady_clock::duration initial = std::chrono::milliseconds(100);
    /// Upper bound of the delay. Must be >= `initial`.
    std::chrono::steady_clock::duration max = std::chrono::seconds(30);
    /// Growth factor between consecutive failures. Must be finite and >= 1.
    double multiplier = 2.0;
    /// Relative random spread of each delay, so many pools do not retry in lockstep. In [0, 1].
    double jitter = 0.2;
};

/// Options of `KeyedClientPool`. Every duration must be >= 0; invalid values make the pool's
/// constructor throw `std::invalid_argument` naming the field.
struct PoolOptions {
    /// Upper bound on one factory call. When it elapses the factory is cancelled, every get waiting
    /// for that build fails with `ResultCode::timeout`, and backoff starts. 0 = no limit.
    std::chrono::steady_clock::duration connect_timeout = std::chrono::seconds(10);

    /// Maximum number of live clients across all keys (cached, or being built). 0 = unlimited.
    std::size_t max_clients = 0;

    /// How long a get for a new key waits for a free permit when `max_clients` clients are alive
    /// (a permit frees when a client is evicted, invalidated or replaced). After it, the get fails
    /// with `ResultCode::pool_exhausted`. 0 = fail at once. Ignored when `max_clients` is 0.
    std::chrono::steady_clock::duration wait_timeout = std::chrono::seconds(5);

    /// A cached client that no get has returned for this long, and that nobody outside the pool
    /// still holds, is closed and removed. Eviction runs every `idle_timeout / 2` (at least every
    /// millisecond) while the pool caches clients, so a client lives between `idle_timeout` and
    /// `1.5 * idle_timeout` after its last use. 0 = never evict.
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(0);

    /// Retry policy after a failed build.
    BackoffOptions backoff{};

    /// How long `async_shutdown` waits, after cancelling them, for factory calls that are still
    /// running (a factory that ignores cancellation). Past it, shutdown completes with
    /// `ResultCode::timeout` and logs how many calls it left; each of their clients is still closed
    /// when its factory returns. 0 = do not wait for them.
    std::chrono::steady_clock::duration shutdown_timeout = std::chrono::seconds(5);

    /// Run each build (the factory call, its connect timer, and the cancellations the pool sends
    /// the factory on a timeout, at shutdown or when every waiter left) on a strand of the pool's,
    /// one per cache shard. Keep it when the pool's executor may run handlers on several threads
    /// at once (an `io_context` run by several threads, a `thread_pool`): the strand keeps those
    /// cancellations from running concurrently with the factory's own steps. Set it to false when
    /// the executor runs one handler at a time (an `io_context` run by one thread, or a strand you
    /// pass in): builds then skip the strand, which costs about a dozen allocations per build on
    /// a type-erased executor (see docs/benchmarks.md). The pool's own state is thread-safe
    /// either way.
    bool build_on_strand = true;

    /// Where this pool logs. Null (the default): the library's logger (`keyedpool::logger()`), as
    /// it is when each message is written.
    std::shared_ptr<spdlog::logger> logger;
};

/// Throws `std::invalid_argument` whose message names the first invalid field, prefixed with
/// `field` (e.g. "RetryPolicy.backoff.multiplier must be finite and >= 1, got 0.5").
void validate(const BackoffOptions& backoff, std::string_view field = "BackoffOptions");

/// Throws `std::invalid_argument` whose message names the first invalid field
/// (e.g. "PoolOptions.backoff.multiplier must be finite and >= 1, got 0.5").
void validate(const PoolOptions& options);

}  // namespace keyedpool

#endif  // KEYEDPOOL_POOL_OPTIONS_HPP
