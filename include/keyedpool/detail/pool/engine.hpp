// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_ENGINE_HPP
#define KEYEDPOOL_DETAIL_POOL_ENGINE_HPP

/// \file
/// The coordinator behind `KeyedClientPool`. It reads in the order a get travels:
///
///   1. `probe`: one look at the key's shard (a hit returns here, without waiting);
///   2. `start_get`: a miss decides under the shard lock (`decide_miss`): hit after all, the same
///      error as the build that just failed, backoff, join the key's flight, or start it;
///   3. the build (`Build`, build.hpp) runs the factory on the shard's strand;
///   4. `end_flight`: under the shard lock, caches the client or records the failure and takes the
///      flight's waiters; they are completed in batches (waiter_batch.hpp);
///   5. `cancel_waiter`: a get that leaves; the last one out ends (abandons) the flight.
///
/// Then management: invalidate, idle eviction (idle_sweeper.hpp), shutdown, stats.
///
/// Shared by the pool object and every operation in flight (so destroying the pool while
/// operations run is safe).

#include <keyedpool/detail/backoff.hpp>
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/detail/permit_queue.hpp>
#include <keyedpool/detail/pool/build.hpp>
#include <keyedpool/detail/pool/cache_shard.hpp>
#include <keyedpool/detail/pool/connect_deadlines.hpp>
#include <keyedpool/detail/pool/decisions.hpp>
#include <keyedpool/detail/pool/fleet_permits.hpp>
#include <keyedpool/detail/pool/flight.hpp>
#include <keyedpool/detail/pool/idle_sweeper.hpp>
#include <keyedpool/detail/pool/waiter.hpp>
#include <keyedpool/detail/pool/waiter_batch.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/pool_options.hpp>
#include <keyedpool/pool_stats.hpp>
#include <keyedpool/result_code.hpp>

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace keyedpool::detail::pool {

/// Describes a key for the log when it is formattable.
template <typename Key>
std::string describe_key(const Key& key) {
    if constexpr (fmt::is_formattable<Key>::value) {
        return fmt::format("{}", key);
    } else {
        (void)key;
        return "<key>";
    }
}

/// Invariants:
/// - Every client the factory returns is counted in `built_` and, exactly once, either cached or
///   closed; a cached client leaves the cache only by being taken out under its shard lock, and
///   whoever took it closes it. Hence closes == builds once the pool has shut down and its
///   factory calls have returned.
/// - `event_seq_` grows on every store and recorded failure (under the key's shard lock), so a
///   get that remembers it when it first looked can tell a failure recorded after that.
/// - At most one open flight per key; a get joins it or creates it under the shard lock, after
///   re-checking the cache under that same lock. A flight is ended exactly once, under the lock,
///   by whoever ends it first (its build, its last waiter leaving, shutdown), and that party
///   completes its waiters.
/// - With `max_clients`: a permit is held by each build from its permit to its end, and by each
///   cached client until it is closed.
/// - With a permit source: a build takes its client's fleet permits before the factory call; they
///   are handed to the client before it is cached (so a close racing the caching finds them) and
///   released when that client is closed — exactly once, as the close is.
template <typename Key, typename Client, typename Traits, typename Hash, typename KeyEqual,
          typename Time>
class PoolEngine
    : public std::enable_shared_from_this<PoolEngine<Key, Client, Traits, Hash, KeyEqual, Time>> {
  public:
    using client_ptr = std::shared_ptr<Client>;
    using factory_type = std::function<boost::asio::awaitable<client_ptr>(const Key&)>;
    using clock = typename Time::clock_type;
    using timer_type = typename Time::timer_type;
    using Result = GetResult<Client>;
    using FlightType = Flight<Key, Client, timer_type>;
    using flight_ptr = std::shared_ptr<FlightType>;
    using Shard = CacheShard<Key, Client, clock, flight_ptr, Hash, KeyEqual>;
    using Deadlines = ConnectDeadlines<FlightType, timer_type>;

    static constexpr std::size_t shard_count = 16;

    PoolEngine(boost::asio::any_io_executor executor, factory_type factory, PoolOptions options,
               std::optional<PermitSource<Key>> permit_source = std::nullopt)
        : executor_(std::move(executor)),
          factory_(std::move(factory)),
          options_(checked(std::move(options))),
          strand_(boost::asio::make_strand(executor_)),
          sweeper_(strand_, std::max<typename clock::duration>(options_.idle_timeout / 2,
                                                               std::chrono::milliseconds(1))) {
        if (!factory_) {
            throw std::invalid_argument("KeyedClientPool: the factory must not be empty");
        }
        for (std::size_t i = 0; i < shard_count; ++i) {
            build_executors_[i] =
                options_.build_on_strand ? make_build_strand(executor_) : executor_;
            deadlines_[i] = std::make_unique<Deadlines>(build_executors_[i]);
        }
        if (options_.max_clients > 0) {
            permits_.emplace(options_.max_clients);
        }
        if (permit_source) {
            fleet_ = std::make_unique<FleetPermits<Key, Client>>(std::move(*permit_source));
        }
    }

    ~PoolEngine() {
        // Normally empty: shutdown (run by the pool's destructor) drained the cache and later
        // stores are refused. Close anything left rather than leak it.
        std::vector<client_ptr> victims;
        for (auto& shard : shards_) {
            shard.drain(victims, [](const flight_ptr&) {});
        }
        for (auto& victim : victims) {
            close_client(std::move(victim), "pool destroyed");
        }
    }

    PoolEngine(const PoolEngine&) = delete;
    PoolEngine& operator=(const PoolEngine&) = delete;

    // ---- 1. a get looks ----------------------------------------------------------------------

    struct Probe {
        ProbeAction action = ProbeAction::miss;
        boost::system::error_code ec;  // when refused: backoff or shutting_down
        client_ptr client;             // when hit
        std::uint64_t observed = 0;    // event_seq_ when looked (for a miss)
    };

    /// One look at the cache under the key's shard lock: a healthy cached client (hit), a refusal
    /// (shutting down, or backoff after a recent failure), or a miss.
    Probe probe(const Key& key) {
        if (shutting_down()) {
            return {ProbeAction::backoff, ResultCode::shutting_down, nullptr};
        }
        Shard& shard = shard_for(key);
        const auto now = [] { return clock::now(); };
        std::lock_guard lock(shard.mutex);
        const std::uint64_t observed = event_seq_.load(std::memory_order_relaxed);
        auto* entry = shard.find(key);
        switch (decide_probe(Shard::facts(entry, now, healthy))) {
            case ProbeAction::hit:
                return {ProbeAction::hit, {}, shard.hand_out(*entry, now, track_idle()), observed};
            case ProbeAction::backoff:
                return {ProbeAction::backoff, ResultCode::backoff, nullptr, observed};
            case ProbeAction::miss:
                break;
        }
        return {ProbeAction::miss, {}, nullptr, observed};
    }

    client_ptr try_get(const Key& key) {
        Probe p = probe(key);
        return p.action == ProbeAction::hit ? std::move(p.client) : nullptr;
    }

    // ---- 2. a miss -----------------------------------------------------------------------------

    /// A miss: under the key's shard lock, decides (`decide_miss`) and either completes at once,
    /// joins the key's flight, or starts one and joins it. `handler` is called as
    /// `void(error_code, client_ptr)` through its associated executor (default: the pool's), never
    /// inline. Terminal, partial or total cancellation through the handler's cancellation slot
    /// takes the waiter out of the flight (only that get stops waiting).
    template <typename Handler>
    void start_get(const Key& key, std::uint64_t observed, Handler&& handler) {
        misses_.fetch_add(1, std::memory_order_relaxed);
        using Op = WaiterOp<Client, std::decay_t<Handler>>;
        auto* waiter = new Op(std::forward<Handler>(handler), executor_);
        Shard& shard = shard_for(key);
        Result result;
        client_ptr broken;
        flight_ptr started;
        const auto now = clock::now();
        const auto at_now = [now] { return now; };
        {
            std::lock_guard lock(shard.mutex);
            auto* entry = shard.find(key);
            const bool refused = shutting_down();
            const MissAction action =
                refused ? MissAction::backoff  // completes with shutting_down
                        : decide_miss(Shard::facts(entry, at_now, healthy), observed);
            switch (action) {
                case MissAction::hit:
                    result.client = shard.hand_out(*entry, at_now, track_idle());
                    break;
                case MissAction::same_error:
                    result.ec = entry->failure;
                    break;
                case MissAction::backoff:
                    result.ec = refused ? ResultCode::shutting_down : ResultCode::backoff;
                    break;
                case MissAction::replace:
                    broken = shard.take(key);
                    cached_.fetch_sub(1, std::memory_order_relaxed);
                    [[fallthrough]];
                case MissAction::start:
                    started = std::make_shared<FlightType>(key, build_executor_for(shard));
                    shard.add_flight(key, started);
                    builds_running_.fetch_add(1, std::memory_order_relaxed);
                    [[fallthrough]];
                case MissAction::join: {
                    FlightType& flight = started ? *started : *entry->flight;
                    // Cancellation goes in before the waiter is published: once linked, another
                    // thread may complete it.
                    waiter->template install_cancellation<CancelWaiter>(
                        this->shared_from_this(), &shard, flight.shared_from_this(), waiter);
                    flight.add(*waiter);
                    waiters_.fetch_add(1, std::memory_order_relaxed);
                    waiter = nullptr;
                    break;
                }
            }
        }
        if (broken) {
            close_cached(std::move(broken), "unhealthy");
        }
        if (waiter) {
            complete_waiter<Client>(*waiter, std::move(result));
        }
        if (started) {
            Build<PoolEngine>::start(this->shared_from_this(), std::move(started));
        }
    }

    // ---- 3. what the build needs (build.hpp) -----------------------------------------------

    const factory_type& factory() const noexcept { return factory_; }
    const PoolOptions& options() const noexcept { return options_; }
    PermitQueue* permits() noexcept { return permits_ ? &*permits_ : nullptr; }
    /// The permit source's side (null without one).
    FleetPermits<Key, Client>* fleet() noexcept { return fleet_.get(); }

    /// Takes the fleet permits of a client of `key` (see `FleetPermits::acquire`).
    boost::asio::awaitable<std::pair<boost::system::error_code, PermitGuard>> acquire_fleet_permit(
        const Key& key) {
        co_return co_await fleet_->acquire(key, options_.wait_timeout, *log(), describe_key(key));
    }

    /// `client` holds `permit` from now on (before it is cached). When the permit is lost the
    /// client is closed if it is still the key's cached one, and the next get rebuilds.
    void hold_fleet_permit(const Key& key, const client_ptr& client, PermitGuard permit) {
        std::weak_ptr<PoolEngine> weak = this->shared_from_this();
        fleet_->hold(key, client.get(), std::move(permit), strand_,
                     [weak](const Key& lost_key, const Client* lost) {
                         if (auto self = weak.lock()) {
                             self->fleet_permit_lost(lost_key, lost);
                         }
                     });
    }
    static bool is_healthy(const Client& client) { return Traits::is_healthy(client); }

    /// The connect deadlines of the flight's shard (touched on the flight's executor only).
    Deadlines& connect_deadlines(const FlightType& flight) {
        return *deadlines_[index_of(shard_for(flight.key))];
    }

    bool flight_is_open(const FlightType& flight) {
        Shard& shard = shard_for(flight.key);
        std::lock_guard lock(shard.mutex);
        return flight.life.open();
    }

    void count_built() noexcept {
        built_.fetch_add(1, std::memory_order_relaxed);
        live_clients_.fetch_add(1, std::memory_order_relaxed);
    }

    /// A build finished with everything it started (its factory returned, or was never called).
    void build_done() noexcept {
        if (builds_running_.fetch_sub(1, std::memory_order_acq_rel) == 1 && shutting_down()) {
            notify_drained();
        }
    }

    /// Closes a client its build could not hand over (flight ended, or born unhealthy).
    void discard(client_ptr client, const char* reason) noexcept {
        close_client(std::move(client), reason);
    }

    void log_build_start(const Key& key) {
        if (auto l = log(); l->should_log(spdlog::level::debug)) {
            l->debug("keyedpool: building client for {}", describe_key(key));
        }
    }

    void log_factory_exception(const Key& key, const std::exception_ptr& exception) {
        try {
            std::rethrow_exception(exception);
        } catch (const std::exception& e) {
            log()->warn("keyedpool: factory for {} threw: {}", describe_key(key), e.what());
        } catch (...) {
            log()->warn("keyedpool: factory for {} threw a non-standard exception",
                        describe_key(key));
        }
    }

    std::shared_ptr<spdlog::logger> log() const {
        return options_.logger ? options_.logger : keyedpool::logger();
    }

    // ---- 4. a flight ends --------------------------------------------------------------------

    /// Ends `flight` with its build's result, if it is still open: caches the client (success) or
    /// records the failure (backoff), forgets the flight, and completes its waiters. Returns
    /// whether `client` was cached (else the caller closes it).
    bool end_flight(FlightType& flight, FlightEnd how, boost::system::error_code ec,
                    client_ptr client) {
        WaiterList<Client> taken;
        bool cached = false;
        unsigned failures = 0;
        Shard& shard = shard_for(flight.key);
        const auto now = clock::now();
        {
            std::lock_guard lock(shard.mutex);
            if (!flight.end(how, taken)) {
                return false;
            }
            shard.remove_flight(flight.key, &flight);
            const auto seq = event_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
            if (!ec) {
                shard.store(flight.key, client, now, seq);
                cached_.fetch_add(1, std::memory_order_relaxed);
                cached = true;
            } else {
                failures = shard.record_failure(flight.key, ec, now, seq, [this](unsigned n) {
                    return backoff_delay(options_.backoff, n, Time::jitter_sample());
                });
            }
        }
        if (cached) {
            if (auto l = log(); l->should_log(spdlog::level::debug)) {
                l->debug("keyedpool: built client for {}", describe_key(flight.key));
            }
            if (track_idle()) {
                sweeper_.ensure_running(this->shared_from_this());
            }
        } else {
            if (ec != ResultCode::pool_exhausted) {
                build_failures_.fetch_add(1, std::memory_order_relaxed);
            }
            log()->warn("keyedpool: building client for {} failed: {} ({}), failure #{} in a row",
                        describe_key(flight.key), ec.message(), ec.to_string(), failures);
        }
        complete_taken(taken, Result{ec, cached ? std::move(client) : nullptr});
        return cached;
    }

    // ---- 5. a waiter leaves ------------------------------------------------------------------

    /// Takes a waiter out of its flight when its get is cancelled.
    struct CancelWaiter {
        CancelWaiter(std::shared_ptr<PoolEngine> e, Shard* s, flight_ptr f, Waiter<Client>* w)
            : engine(std::move(e)), shard(s), flight(std::move(f)), waiter(w) {}
        std::shared_ptr<PoolEngine> engine;
        Shard* shard;
        flight_ptr flight;
        Waiter<Client>* waiter;
        void operator()(boost::asio::cancellation_type type) const {
            if (type != boost::asio::cancellation_type::none) {
                engine->cancel_waiter(*shard, flight, *waiter);
            }
        }
    };

    /// Completes a cancelled get with `operation_aborted` unless it was completed already; when it
    /// was the flight's last waiter, ends the flight (abandoned) and stops its build.
    void cancel_waiter(Shard& shard, const flight_ptr& flight, Waiter<Client>& waiter) {
        bool abandoned = false;
        {
            std::lock_guard lock(shard.mutex);
            if (!flight->holds(waiter)) {
                return;  // completed already; the completion is on its way
            }
            abandoned = flight->remove(waiter);
            if (abandoned) {
                shard.remove_flight(flight->key, flight.get());
            }
        }
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        complete_waiter<Client>(waiter, Result{boost::asio::error::operation_aborted, nullptr});
        if (abandoned) {
            Build<PoolEngine>::stop(this->shared_from_this(), flight);
        }
    }

    // ---- management --------------------------------------------------------------------------

    /// A client's fleet permit was lost: close the client if it is still cached for `key` (by
    /// identity: a newer client of the key keeps its own permit).
    void fleet_permit_lost(const Key& key, const Client* lost) {
        client_ptr victim;
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            if (auto* entry = shard.find(key); entry && entry->client.get() == lost) {
                victim = shard.take(key);
            }
        }
        fleet_->count_lost();
        if (victim) {
            log()->warn(
                "keyedpool: the permit of the client for {} was lost (its lease could not be "
                "renewed); closing the client, the next get rebuilds it",
                describe_key(key));
            cached_.fetch_sub(1, std::memory_order_relaxed);
            close_cached(std::move(victim), "permit lost");
        }
    }

    bool invalidate(const Key& key) {
        client_ptr victim;
        bool found = false;
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            victim = shard.take(key, &found);
        }
        if (victim) {
            cached_.fetch_sub(1, std::memory_order_relaxed);
            close_cached(std::move(victim), "invalidated");
        }
        return found;
    }

    /// Starts shutting down: refuses new gets, fails waiters, stops builds and the sweeper and
    /// closes every cached client. Idempotent; never throws; does not wait.
    void begin_shutdown() noexcept {
        if (shutting_down_.exchange(true)) {
            return;
        }
        log()->debug("keyedpool: shutting down ({} live clients)", live_clients_.load());
        try {
            sweeper_.stop(this->shared_from_this());
            for (auto& shard : shards_) {
                WaiterList<Client> taken;
                std::vector<flight_ptr> ended;
                std::vector<client_ptr> victims;
                {
                    std::lock_guard lock(shard.mutex);
                    shard.drain(victims, [&](const flight_ptr& flight) {
                        if (flight->end(FlightEnd::shut_down, taken)) {
                            ended.push_back(flight);
                        }
                    });
                }
                for (auto& flight : ended) {
                    Build<PoolEngine>::stop(this->shared_from_this(), flight);
                }
                complete_taken(taken, Result{ResultCode::shutting_down, nullptr});
                cached_.fetch_sub(victims.size(), std::memory_order_relaxed);
                for (auto& victim : victims) {
                    close_cached(std::move(victim), "shutdown");
                }
            }
        } catch (const std::exception& e) {  // allocation failure: log, keep going
            log()->error("keyedpool: error while shutting down: {}", e.what());
        }
        if (builds_running_.load(std::memory_order_acquire) == 0) {
            notify_drained();
        }
    }

    /// Shuts down, then waits until every build has finished (so every client the factory made
    /// has been closed), at most `shutdown_timeout`. Success when drained; `ResultCode::timeout`
    /// when factory calls that ignore cancellation were still running (logged with their count).
    static boost::asio::awaitable<boost::system::error_code> shutdown(
        std::shared_ptr<PoolEngine> self) {
        namespace asio = boost::asio;
        self->begin_shutdown();
        const auto deadline = clock::now() + self->options_.shutdown_timeout;
        timer_type timer(co_await asio::this_coro::executor);  // on strand_
        while (self->builds_running_.load(std::memory_order_acquire) != 0) {
            if (clock::now() >= deadline) {
                self->log()->warn(
                    "keyedpool: shutdown left {} factory calls running after shutdown_timeout; "
                    "their clients are closed when they return",
                    self->builds_running_.load());
                co_return ResultCode::timeout;
            }
            timer.expires_at(deadline);
            auto it = self->drain_timers_.insert(self->drain_timers_.end(), &timer);
            // Woken by the deadline, or cancelled by the last build to finish: look again.
            (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            self->drain_timers_.erase(it);
            auto state = co_await asio::this_coro::cancellation_state;
            if (state.cancelled() != asio::cancellation_type::none) {
                co_return asio::error::operation_aborted;
            }
        }
        co_return boost::system::error_code{};
    }

    /// One sweep (the idle sweeper's): closes the clients idle for `idle_timeout`.
    void evict_idle() {
        const auto now = clock::now();
        for (auto& shard : shards_) {
            std::vector<client_ptr> victims;
            {
                std::lock_guard lock(shard.mutex);
                shard.evict_idle(now, options_.idle_timeout, victims);
            }
            cached_.fetch_sub(victims.size(), std::memory_order_relaxed);
            for (auto& victim : victims) {
                evictions_.fetch_add(1, std::memory_order_relaxed);
                close_cached(std::move(victim), "idle");
            }
        }
    }

    bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_acquire); }

    PoolStats stats() const {
        PoolStats s;
        for (const auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            s.hits += shard.hits();
        }
        s.misses = misses_.load(std::memory_order_relaxed);
        s.builds = built_.load(std::memory_order_relaxed);
        s.build_failures = build_failures_.load(std::memory_order_relaxed);
        s.waiters = waiters_.load(std::memory_order_relaxed);
        s.live_clients = live_clients_.load(std::memory_order_relaxed);
        s.evictions = evictions_.load(std::memory_order_relaxed);
        s.closes = closes_.load(std::memory_order_relaxed);
        s.builds_in_progress = builds_running_.load(std::memory_order_relaxed);
        if (fleet_) {
            s.builds_without_permit = fleet_->builds_without_permit();
            s.permits_lost = fleet_->permits_lost();
        }
        return s;
    }

    std::size_t size() const noexcept { return cached_.load(std::memory_order_relaxed); }

    std::size_t open_flights() const {
        std::size_t n = 0;
        for (const auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            n += shard.flights();
        }
        return n;
    }

    const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
    const boost::asio::any_io_executor& strand() const noexcept { return strand_; }

  private:
    static PoolOptions checked(PoolOptions options) {
        validate(options);
        return options;
    }

    bool track_idle() const noexcept { return options_.idle_timeout.count() > 0; }

    /// A strand over the concrete executor when it is a known one: a strand over a type-erased
    /// executor pays an allocation for every property query Asio makes through it.
    static boost::asio::any_io_executor make_build_strand(const boost::asio::any_io_executor& ex) {
        if (const auto* io = ex.target<boost::asio::io_context::executor_type>()) {
            return boost::asio::make_strand(*io);
        }
        if (const auto* pool = ex.target<boost::asio::thread_pool::executor_type>()) {
            return boost::asio::make_strand(*pool);
        }
        return boost::asio::make_strand(ex);
    }

    struct Healthy {
        bool operator()(const Client& client) const { return Traits::is_healthy(client); }
    };
    static constexpr Healthy healthy{};

    Shard& shard_for(const Key& key) {
        // Fibonacci hashing spreads identity hashes (std::hash<int>) over the shards.
        const std::uint64_t h = static_cast<std::uint64_t>(Hash{}(key)) * 0x9E3779B97F4A7C15ULL;
        return shards_[h >> 60];
    }

    std::size_t index_of(const Shard& shard) const noexcept {
        return static_cast<std::size_t>(&shard - shards_.data());
    }

    const boost::asio::any_io_executor& build_executor_for(const Shard& shard) const {
        return build_executors_[index_of(shard)];
    }

    /// Completes waiters taken off a flight.
    void complete_taken(WaiterList<Client>& taken, const Result& result) {
        waiters_.fetch_sub(complete_waiters<Client>(taken, result), std::memory_order_relaxed);
    }

    /// Wakes every `shutdown()` waiting for the builds to finish.
    void notify_drained() noexcept {
        try {
            boost::asio::post(strand_, [self = this->shared_from_this()] {
                for (auto* timer : self->drain_timers_) {
                    timer->cancel();
                }
            });
        } catch (...) {  // out of memory: shutdown() still ends at its deadline
        }
    }

    /// Closes a client the factory produced. Called exactly once per client.
    void close_client(client_ptr client, const char* reason) noexcept {
        try {
            Traits::close(*client);
        } catch (const std::exception& e) {
            log()->error("keyedpool: closing a client ({}) threw: {}", reason, e.what());
        } catch (...) {
            log()->error("keyedpool: closing a client ({}) threw", reason);
        }
        if (fleet_) {
            fleet_->release(client.get());
        }
        closes_.fetch_add(1, std::memory_order_relaxed);
        live_clients_.fetch_sub(1, std::memory_order_relaxed);
        log()->debug("keyedpool: closed a client ({})", reason);
    }

    /// Closes a client that was cached, returning its permit.
    void close_cached(client_ptr client, const char* reason) noexcept {
        close_client(std::move(client), reason);
        if (permits_) {
            permits_->release();
        }
    }

    const boost::asio::any_io_executor executor_;
    const factory_type factory_;
    const PoolOptions options_;
    const boost::asio::any_io_executor strand_;  // sweeper, shutdown
    std::array<Shard, shard_count> shards_;
    std::array<boost::asio::any_io_executor, shard_count>
        build_executors_;                                            // strands, or executor_
    std::array<std::unique_ptr<Deadlines>, shard_count> deadlines_;  // on build_executors_
    std::optional<PermitQueue> permits_;                             // with max_clients
    std::unique_ptr<FleetPermits<Key, Client>> fleet_;               // with a permit source
    IdleSweeper<timer_type> sweeper_;
    std::list<timer_type*> drain_timers_;  // shutdown() calls waiting; on strand_
    std::atomic<bool> shutting_down_{false};
    std::atomic<std::uint64_t> event_seq_{0};
    std::atomic<std::size_t> builds_running_{0};
    std::atomic<std::size_t> cached_{0};
    std::atomic<std::uint64_t> misses_{0};
    std::atomic<std::uint64_t> built_{0};
    std::atomic<std::uint64_t> build_failures_{0};
    std::atomic<std::uint64_t> waiters_{0};
    std::atomic<std::uint64_t> live_clients_{0};
    std::atomic<std::uint64_t> evictions_{0};
    std::atomic<std::uint64_t> closes_{0};
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_ENGINE_HPP
