// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_KEYED_CLIENT_POOL_HPP
#define KEYEDPOOL_KEYED_CLIENT_POOL_HPP

/// \file
/// `KeyedClientPool<Key, Client>`: one shared client per key, built once however many coroutines
/// ask for it at the same time.

#include <keyedpool/client_traits.hpp>
#include <keyedpool/detail/pool/engine.hpp>
#include <keyedpool/permit_source.hpp>
#include <keyedpool/pool_options.hpp>
#include <keyedpool/pool_stats.hpp>
#include <keyedpool/result_code.hpp>
#include <keyedpool/time_traits.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace keyedpool {

/// A cache of one shared client per key (a connection id, an endpoint), safe against the
/// "zombie connection" race: when many operations ask for a key that has no client yet, exactly one
/// of them calls the factory and all the others wait for *that* result (single flight). Requests
/// for different keys never wait on each other.
///
/// **Getting a client.** `async_get(key)` completes with the key's cached client when it is there
/// and healthy (a hit: a short sharded lookup, no strand hop, no key lock); otherwise it joins the
/// key's build in flight, or starts one with `factory(key)`. When a build ends, every get waiting
/// for it is completed with its result at once (one post each). Every client the
/// factory produces is closed exactly once with `Traits::close`: when replaced after failing
/// `Traits::is_healthy`, on `invalidate`, on idle eviction, or at shutdown.
///
/// **Failures.** A factory error reaches every get waiting for that build as one `error_code` (a
/// thrown `system_error` keeps its code, anything else is `ResultCode::connect_failed`, a null
/// client too); a factory slower than `connect_timeout` is cancelled and reported as
/// `ResultCode::timeout`. After a failure, gets for that key fail at once with
/// `ResultCode::backoff` until the retry deadline (`PoolOptions::backoff`); the first get after it
/// rebuilds.
///
/// **Cancellation.** `async_get` supports per-operation cancellation (terminal, partial and total:
/// a cancelled get only stops waiting). Cancelling one get completes it with
/// `boost::asio::error::operation_aborted` and does not disturb the build the others wait for,
/// even if that get started it. When every get waiting for a build has been cancelled, the build
/// ends and its factory call is cancelled; a get that comes later starts a new build.
///
/// **Bounded waits.** `connect_timeout` bounds what the gets see even when the factory ignores
/// cancellation: they fail with `ResultCode::timeout` when it elapses, and a client the factory
/// returns after that is closed. Such a call may still be running when the next build for its key
/// starts (`PoolStats::builds_in_progress` counts it); at most one build per key can hand out a
/// client.
///
/// **Lifetime.** The pool may be destroyed while operations are in flight: destruction starts a
/// shutdown (waiters fail with `ResultCode::shutting_down`, builds are cancelled, cached clients
/// are closed) without waiting for it. `async_shutdown` does the same and completes once every
/// build has finished, or after `PoolOptions::shutdown_timeout` with `ResultCode::timeout` when
/// factory calls that ignore cancellation are still running (their clients are closed when they
/// return). The executor's execution context must outlive the pool's operations.
///
/// **Thread safety.** Distinct objects: safe. Shared object: safe; every member function may be
/// called concurrently from any thread, and the pool is correct on a multi-threaded `io_context`
/// or `thread_pool`. The factory may be called concurrently for different keys.
///
/// \tparam Key      hashable, equality-comparable, copyable key type.
/// \tparam Client   the client type, held by `std::shared_ptr<Client>`.
/// \tparam Traits   health check and close (see `ClientTraits`).
/// \tparam Time     clock, timers and backoff jitter (see `SteadyTimeTraits`); tests substitute a
///                  virtual clock.
///
/// The factory runs on a strand of the pool's (one per cache shard), where its cancellation is
/// delivered too, so a factory on a multi-threaded executor is never cancelled concurrently with
/// its own steps.
template <typename Key, typename Client, typename Traits = ClientTraits<Client>,
          typename Hash = std::hash<Key>, typename KeyEqual = std::equal_to<Key>,
          typename Time = SteadyTimeTraits>
class KeyedClientPool {
    using State = detail::pool::PoolEngine<Key, Client, Traits, Hash, KeyEqual, Time>;
    using as_tuple_awaitable_t = boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>>;

  public:
    using key_type = Key;
    using client_type = Client;
    using client_ptr = std::shared_ptr<Client>;
    using executor_type = boost::asio::any_io_executor;
    /// Builds the client for a key. Called once at a time per key; it should honour cancellation
    /// (the pool cancels it on `connect_timeout`, shutdown, or when every get waiting for it was
    /// cancelled) and report failure by throwing (a `boost::system::system_error` keeps its
    /// code).
    using factory_type = std::function<boost::asio::awaitable<client_ptr>(const Key&)>;

    /// \throws std::invalid_argument if `options` are invalid (the message names the field) or the
    ///         factory is empty.
    KeyedClientPool(executor_type executor, factory_type factory, PoolOptions options = {})
        : KeyedClientPool(std::move(executor), std::move(factory), std::move(options),
                          std::nullopt) {}

    /// A pool whose clients are built only with permits of `permits` (a budget shared with other
    /// pools and processes: see `PermitSource`). A get that finds no permit free within
    /// `options.wait_timeout` fails with `ResultCode::pool_exhausted`.
    /// \throws std::invalid_argument if `options` or `permits` are invalid (the message names the
    ///         field) or the factory is empty.
    KeyedClientPool(executor_type executor, factory_type factory, PoolOptions options,
                    PermitSource<Key> permits)
        : KeyedClientPool(std::move(executor), std::move(factory), std::move(options),
                          std::optional<PermitSource<Key>>(std::move(permits))) {}

  private:
    KeyedClientPool(executor_type executor, factory_type factory, PoolOptions options,
                    std::optional<PermitSource<Key>> permits)
        : state_(std::make_shared<State>(std::move(executor), std::move(factory),
                                         std::move(options), std::move(permits))) {
        for (auto& handle : handles_) {
            // An anchor per handle, alone on its cache lines with its reference count.
            auto anchor = std::make_shared<Anchor>();
            anchor->engine = state_;
            handle = std::shared_ptr<State>(std::move(anchor), state_.get());
        }
    }

  public:
    KeyedClientPool(const KeyedClientPool&) = delete;
    KeyedClientPool& operator=(const KeyedClientPool&) = delete;

    /// Starts shutting down (see Lifetime) without waiting. Never throws.
    ~KeyedClientPool() { state_->begin_shutdown(); }

    executor_type get_executor() const noexcept { return state_->executor(); }
    const PoolOptions& options() const noexcept { return state_->options(); }

    /// Gets the key's client, building it if needed (see the class documentation).
    ///
    /// Handler signature: `void(boost::system::error_code, std::shared_ptr<Client>)`; the pointer
    /// is non-null exactly when the code is success. Errors: `ResultCode::connect_failed`,
    /// `timeout`, `backoff`, `unhealthy`, `pool_exhausted`, `shutting_down`, a code the factory
    /// threw, or `boost::asio::error::operation_aborted` after cancellation.
    ///
    /// With no token (`co_await pool.async_get(key)`) it returns an `awaitable<client_ptr>` that
    /// throws `boost::system::system_error` on error; with `as_tuple(use_awaitable)` an awaitable
    /// of `std::tuple<error_code, client_ptr>`. Either way a hit (or a refusal: backoff, shutting
    /// down) returns without suspending, at about the cost of one plain coroutine call; a miss
    /// suspends the caller's coroutine until the build ends. Any other completion token works
    /// (callbacks, `deferred`, `use_future`); handlers are never invoked from inside `async_get`
    /// and run on their associated executor (default: the pool's).
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_get(const Key& key, CompletionToken&& token = {}) {
        if constexpr (std::is_same_v<std::decay_t<CompletionToken>,
                                     boost::asio::use_awaitable_t<>>) {
            return get_awaitable(handle(), key);
        } else if constexpr (std::is_same_v<std::decay_t<CompletionToken>, as_tuple_awaitable_t>) {
            return get_tuple_awaitable(handle(), key);
        } else {
            return boost::asio::async_initiate<CompletionToken,
                                               void(boost::system::error_code, client_ptr)>(
                GetInitiation{state_}, token, key);
        }
    }

    /// The key's cached client if it is there and healthy, else nullptr. Never waits, never builds.
    client_ptr try_get(const Key& key) { return state_->try_get(key); }

    /// Closes and forgets the key's cached client, and forgets a recorded failure (so the next get
    /// rebuilds at once). A build in flight for the key is not affected. Returns whether there was
    /// anything to forget.
    bool invalidate(const Key& key) { return state_->invalidate(key); }

    /// Shuts the pool down: later and waiting gets fail with `ResultCode::shutting_down`, builds in
    /// flight are cancelled, every cached client is closed. Completes once every build has
    /// finished, so every client the factory made has been closed — or after
    /// `PoolOptions::shutdown_timeout`, when factory calls that ignore cancellation still run.
    /// Handler signature: `void(boost::system::error_code)`: success; `ResultCode::timeout` when
    /// it stopped waiting for such calls (their count is logged and in
    /// `stats().builds_in_progress`; each of their clients is closed when it arrives); or
    /// `operation_aborted` if this wait was cancelled (the shutdown itself still proceeds).
    /// Idempotent; concurrent calls all complete.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_shutdown(CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            ShutdownInitiation{state_}, token);
    }

    /// Counters; see `PoolStats`.
    PoolStats stats() const { return state_->stats(); }

    /// Number of keys with a cached client.
    std::size_t size() const noexcept { return state_->size(); }

    /// Number of keys with a build accepting gets right now (0 when the pool is idle): the size of
    /// the pool's per-key bookkeeping beyond the cache. For diagnostics and tests.
    std::size_t open_flights() const { return state_->open_flights(); }

  private:
    using Probe = typename State::Probe;

    // The coroutines take the engine by value: a coroutine may start after the pool is gone.
    static boost::asio::awaitable<client_ptr> get_awaitable(std::shared_ptr<State> state, Key key) {
        Probe probe = state->probe(key);
        if (probe.action == detail::pool::ProbeAction::hit) {
            co_return std::move(probe.client);
        }
        if (probe.ec) {
            throw boost::system::system_error(probe.ec);
        }
        // A miss waits in the coroutine itself: the build's end resumes it with one post.
        co_return co_await wait_for_build(std::move(state), std::move(key), probe.observed,
                                          boost::asio::use_awaitable);
    }

    static boost::asio::awaitable<std::tuple<boost::system::error_code, client_ptr>>
    get_tuple_awaitable(std::shared_ptr<State> state, Key key) {
        Probe probe = state->probe(key);
        if (probe.action != detail::pool::ProbeAction::miss) {
            co_return std::tuple{probe.ec, std::move(probe.client)};
        }
        co_return co_await wait_for_build(std::move(state), std::move(key), probe.observed,
                                          boost::asio::as_tuple(boost::asio::use_awaitable));
    }

    template <typename Token>
    static auto wait_for_build(std::shared_ptr<State> state, Key key, std::uint64_t observed,
                               const Token& token) {
        return boost::asio::async_initiate<const Token&,
                                           void(boost::system::error_code, client_ptr)>(
            [state = std::move(state), observed](auto handler, const Key& wanted) {
                state->start_get(wanted, observed, std::move(handler));
            },
            token, std::move(key));
    }

    struct GetInitiation {
        std::shared_ptr<State> state;

        template <typename Handler>
        void operator()(Handler&& handler, const Key& key) const {
            Probe probe = state->probe(key);
            if (probe.action == detail::pool::ProbeAction::miss) {
                state->start_get(key, probe.observed, std::forward<Handler>(handler));
                return;
            }
            auto executor = boost::asio::get_associated_executor(handler, state->executor());
            boost::asio::post(executor, [handler = std::forward<Handler>(handler), ec = probe.ec,
                                         client = std::move(probe.client)]() mutable {
                std::move(handler)(ec, std::move(client));
            });
        }
    };

    struct ShutdownInitiation {
        std::shared_ptr<State> state;

        template <typename Handler>
        void operator()(Handler&& handler) const {
            detail::co_spawn_for_handler(
                state->strand(), State::shutdown(state), std::forward<Handler>(handler),
                state->executor(),
                [](auto user_handler, std::exception_ptr exception, boost::system::error_code ec) {
                    std::move(user_handler)(
                        exception ? detail::error_code_of(exception, ResultCode::cancelled) : ec);
                });
        }
    };

    /// Keeps the engine alive for an awaitable get, which may start after the pool is gone. A get
    /// copies its thread's handle: each has its own reference count on its own cache line, so
    /// gets on different threads do not contend on one count.
    const std::shared_ptr<State>& handle() const noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t slot = next.fetch_add(1, std::memory_order_relaxed);
        return handles_[slot % handles_.size()];
    }

    struct alignas(64) Anchor {
        std::shared_ptr<State> engine;
    };

    std::shared_ptr<State> state_;
    std::array<std::shared_ptr<State>, 16> handles_;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_KEYED_CLIENT_POOL_HPP
