// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_STATE_HPP
#define KEYEDPOOL_DETAIL_POOL_STATE_HPP

#include <keyedpool/detail/async_semaphore.hpp>
#include <keyedpool/detail/backoff.hpp>
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/pool_options.hpp>
#include <keyedpool/pool_stats.hpp>
#include <keyedpool/result_code.hpp>

#include <fmt/format.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace keyedpool::detail {

template <typename Client>
struct GetResult {
    boost::system::error_code ec;
    std::shared_ptr<Client> client;
};

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

/// The engine behind `KeyedClientPool`, shared by the pool object and every operation in flight
/// (so destroying the pool while operations run is safe).
///
/// Data and who guards it:
/// - `shards_`: the cache. Each shard is a `std::mutex` + map from key to `Slot` (a ready client,
///   or the record of the last failed build) + map from key to `Flight` (the build in flight for
///   that key and the gets waiting for it). Critical sections are short and never call the
///   factory, never suspend, and never call `Traits::close`.
/// - A `Flight` is created by the first get that misses and runs its build (`run_flight`) on a
///   strand of its own; only that build creates, replaces or fails the key's client. When it ends
///   it takes every waiter off the flight under the shard lock in O(1) and completes them in
///   batches (one post per run of waiters sharing an executor), with no hand-off chain.
/// - `builds_`: handles of builds in flight, so shutdown can cancel them (std::mutex).
/// - `sweep_timer_`: on `strand_`.
/// - counters: atomics.
///
/// Invariants:
/// - Every client the factory returns is counted in `built_` and, exactly once, either stored in a
///   slot or closed; a stored client leaves its slot only by being moved out under the shard lock,
///   and whoever moved it out closes it. Hence closes == builds once the pool has shut down.
/// - `event_seq_` grows on every store and recorded failure (under the key's shard lock). A get
///   remembers its value when it first looked at the cache; a slot whose `seq` is larger was
///   written after that, i.e. by a build that ended after this get looked.
/// - At most one flight per key; a get that misses joins it or creates it under the shard lock,
///   after re-checking the cache under that same lock.
/// - With `max_clients`, a slot unit is held by each build in progress and each cached client.
template <typename Key, typename Client, typename Traits, typename Hash, typename KeyEqual>
class PoolState
    : public std::enable_shared_from_this<PoolState<Key, Client, Traits, Hash, KeyEqual>> {
  public:
    using client_ptr = std::shared_ptr<Client>;
    using factory_type = std::function<boost::asio::awaitable<client_ptr>(const Key&)>;
    using clock = std::chrono::steady_clock;
    using Result = GetResult<Client>;

    PoolState(boost::asio::any_io_executor executor, factory_type factory, PoolOptions options)
        : executor_(std::move(executor)),
          factory_(std::move(factory)),
          options_(checked(options)),
          strand_(boost::asio::make_strand(executor_)),
          drained_(executor_, 1),
          sweep_timer_(strand_) {
        if (!factory_) {
            throw std::invalid_argument("KeyedClientPool: the factory must not be empty");
        }
        if (options_.max_clients > 0) {
            slots_.emplace(executor_, options_.max_clients);
        }
    }

    ~PoolState() {
        // Normally empty: shutdown (run by the pool's destructor) drained the cache and later
        // stores are refused. Close anything left rather than leak it.
        for (auto& shard : shards_) {
            for (auto& [key, slot] : shard.map) {
                if (slot.client) {
                    close_client(std::move(slot.client), "pool destroyed");
                }
            }
        }
    }

    PoolState(const PoolState&) = delete;
    PoolState& operator=(const PoolState&) = delete;

    // ---- fast path -------------------------------------------------------------------------

    enum class ProbeKind { hit, miss, refused };
    struct Probe {
        ProbeKind kind;
        boost::system::error_code ec;  // when refused
        client_ptr client;             // when hit
        std::uint64_t observed = 0;    // event_seq_ when looked (for a miss)
    };

    /// One look at the cache under the key's shard lock: a healthy cached client (hit), a refusal
    /// (shutting down, or backoff after a recent failure), or a miss.
    Probe probe(const Key& key) {
        if (shutting_down()) {
            return {ProbeKind::refused, ResultCode::shutting_down, nullptr};
        }
        Shard& shard = shard_for(key);
        std::lock_guard lock(shard.mutex);
        const std::uint64_t observed = event_seq_.load(std::memory_order_relaxed);
        auto it = shard.map.find(key);
        if (it == shard.map.end()) {
            return {ProbeKind::miss, {}, nullptr, observed};
        }
        Slot& slot = it->second;
        if (slot.client) {
            if (Traits::is_healthy(*slot.client)) {
                ++shard.hits;
                if (track_idle()) {
                    slot.last_used = clock::now();
                }
                return {ProbeKind::hit, {}, slot.client};
            }
        } else if (slot.failure && clock::now() < slot.retry_at) {
            return {ProbeKind::refused, ResultCode::backoff, nullptr};
        }
        return {ProbeKind::miss, {}, nullptr, observed};
    }

    client_ptr try_get(const Key& key) {
        Probe p = probe(key);
        return p.kind == ProbeKind::hit ? std::move(p.client) : nullptr;
    }

    // ---- slow path -------------------------------------------------------------------------

    /// A miss: under the key's shard lock, re-checks the cache and either completes at once, joins
    /// the key's build in flight, or starts one (a `run_flight` coroutine on a strand of its own)
    /// and joins it. `handler` is called as `void(error_code, client_ptr)` through its associated
    /// executor (default: the pool's), never inline. Terminal cancellation through the handler's
    /// cancellation slot takes the waiter out of the flight; a flight left without waiters cancels
    /// its build.
    template <typename Handler>
    void start_get(const Key& key, std::uint64_t observed, Handler&& handler) {
        misses_.fetch_add(1, std::memory_order_relaxed);
        using Op = WaiterOp<std::decay_t<Handler>>;
        std::unique_ptr<Waiter> op =
            std::make_unique<Op>(std::forward<Handler>(handler), executor_);
        Shard& shard = shard_for(key);
        Recheck recheck;
        std::shared_ptr<Flight> started;
        {
            std::lock_guard lock(shard.mutex);
            if (shutting_down()) {
                recheck = Recheck::finish(ResultCode::shutting_down);
            } else {
                recheck = this->recheck(shard, key, observed);
            }
            if (recheck.build) {
                auto [it, inserted] = shard.flights.try_emplace(key);
                if (inserted) {
                    it->second = started = std::make_shared<Flight>(executor_);
                    flights_.fetch_add(1, std::memory_order_relaxed);
                }
                // The cancellation handler goes in before the waiter is published: once queued,
                // another thread may complete it.
                static_cast<Op&>(*op).install_cancellation(this->shared_from_this(), shard);
                op->flight = it->second;
                op->queued = true;
                it->second->waiters.push_back(*op.release());
                waiters_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        if (recheck.stale) {
            close_cached(std::move(recheck.stale), "unhealthy");
        }
        if (!recheck.build) {
            complete_one(std::move(op), std::move(recheck.result));
        }
        if (started) {
            namespace asio = boost::asio;
            asio::co_spawn(started->strand, run_flight(this->shared_from_this(), key, started),
                           asio::detached);
        }
    }

    // ---- management ------------------------------------------------------------------------

    bool invalidate(const Key& key) {
        client_ptr victim;
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            auto it = shard.map.find(key);
            if (it == shard.map.end()) {
                return false;
            }
            victim = take_slot(shard, it);
        }
        if (victim) {
            close_cached(std::move(victim), "invalidated");
        }
        return true;
    }

    /// Starts shutting down: refuses new gets, cancels waiters and builds, stops the sweeper and
    /// closes every cached client. Idempotent; never throws; does not wait.
    void begin_shutdown() noexcept {
        if (shutting_down_.exchange(true)) {
            return;
        }
        logger()->debug("keyedpool: shutting down ({} live clients)", live_clients_.load());
        try {
            fail_waiters(ResultCode::shutting_down);
            {
                std::lock_guard lock(builds_mutex_);
                for (auto& handle : builds_) {
                    boost::asio::post(handle->executor, [handle] { handle->timer.cancel(); });
                }
            }
            boost::asio::post(strand_,
                              [self = this->shared_from_this()] { self->sweep_timer_.cancel(); });
        } catch (const std::exception& e) {  // allocation failure while posting: log, keep going
            logger()->error("keyedpool: error while cancelling operations at shutdown: {}",
                            e.what());
        }
        for (auto& shard : shards_) {
            std::vector<client_ptr> victims;
            {
                std::lock_guard lock(shard.mutex);
                for (auto it = shard.map.begin(); it != shard.map.end();) {
                    if (it->second.client) {
                        cached_.fetch_sub(1, std::memory_order_relaxed);
                        victims.push_back(std::move(it->second.client));
                    }
                    it = shard.map.erase(it);
                }
                shard.failure_records = 0;
            }
            for (auto& victim : victims) {
                close_cached(std::move(victim), "shutdown");
            }
        }
    }

    /// Shuts down and waits until every operation in flight has finished (so every client the
    /// factory produced has been closed).
    static boost::asio::awaitable<void> shutdown(std::shared_ptr<PoolState> self) {
        self->begin_shutdown();
        while (self->outstanding_.load() != 0) {
            co_await self->drained_.async_receive(
                boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        self->drained_.try_send(boost::system::error_code{});  // let a concurrent shutdown through
    }

    bool shutting_down() const noexcept { return shutting_down_.load(); }

    PoolStats stats() const {
        PoolStats s;
        for (const auto& shard : shards_) {
            std::lock_guard lock(shard.mutex);
            s.hits += shard.hits;
        }
        s.misses = misses_.load(std::memory_order_relaxed);
        s.builds = built_.load(std::memory_order_relaxed);
        s.build_failures = build_failures_.load(std::memory_order_relaxed);
        s.waiters = waiters_.load(std::memory_order_relaxed);
        s.live_clients = live_clients_.load(std::memory_order_relaxed);
        s.evictions = evictions_.load(std::memory_order_relaxed);
        s.closes = closes_.load(std::memory_order_relaxed);
        return s;
    }

    std::size_t size() const noexcept { return cached_.load(std::memory_order_relaxed); }
    std::size_t lock_entries() const noexcept { return flights_.load(std::memory_order_relaxed); }
    const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
    const PoolOptions& options() const noexcept { return options_; }

  private:
    struct Slot {
        client_ptr client;                  // ready client, or null
        clock::time_point last_used{};      // when `client` was last handed out
        std::uint64_t seq = 0;              // event_seq_ when client stored / failure recorded
        boost::system::error_code failure;  // error of the last build, when client is null
        clock::time_point retry_at{};       // no rebuild before this, after a failure
        unsigned consecutive_failures = 0;  // drives the backoff growth
    };

    struct Flight;

    /// A get waiting for its key's build. It is queued while `queued && !flight->finished` (both
    /// change only under the shard lock); whoever ends that state owns the waiter and completes it.
    struct Waiter : boost::intrusive::list_base_hook<> {
        explicit Waiter(boost::asio::any_io_executor ex)
            : executor(boost::asio::prefer(std::move(ex),
                                           boost::asio::execution::outstanding_work.tracked)) {}
        virtual ~Waiter() = default;

        /// On `executor`: clears the handler's cancellation slot, destroys the waiter, then calls
        /// the handler with `result`.
        virtual void invoke(const Result& result) = 0;

        boost::asio::any_io_executor executor;  // the handler's; counts as work while waiting
        std::shared_ptr<Flight> flight;
        bool queued = false;
    };
    using WaiterList = boost::intrusive::list<Waiter, boost::intrusive::constant_time_size<false>>;

    struct BuildHandle;

    /// The build in flight for a key and the gets waiting for it (in `Shard::flights`).
    struct Flight {
        explicit Flight(const boost::asio::any_io_executor& ex) : strand(ex) {}
        WaiterList waiters;                                        // guarded by the shard lock
        bool finished = false;                                     // guarded by the shard lock
        boost::asio::strand<boost::asio::any_io_executor> strand;  // runs the build
        // The current build, on `strand`. Not owned: a handle (its timer, its type-erased strand
        // executor) is destroyed by its build on the strand, never by a waiter's last reference
        // to the flight on another thread.
        std::weak_ptr<BuildHandle> build;
    };

    struct alignas(64) Shard {
        mutable std::mutex mutex;
        std::unordered_map<Key, Slot, Hash, KeyEqual> map;
        std::unordered_map<Key, std::shared_ptr<Flight>, Hash, KeyEqual> flights;
        std::uint64_t hits = 0;
        std::size_t failure_records = 0;  // slots holding only a failure
        std::size_t prune_threshold = 64;
    };

    struct Recheck {
        bool build = false;
        Result result;     // when not building
        client_ptr stale;  // an unhealthy client taken out of the cache, to close

        static Recheck build_it(client_ptr stale = nullptr) { return {true, {}, std::move(stale)}; }
        static Recheck finish(boost::system::error_code ec, client_ptr client = nullptr) {
            return {false, {ec, std::move(client)}, nullptr};
        }
    };

    /// Takes a waiter out of its flight when its get is cancelled.
    struct CancelWaiter {
        CancelWaiter(std::shared_ptr<PoolState> s, Shard* sh, Waiter* w)
            : state(std::move(s)), shard(sh), waiter(w) {}
        std::shared_ptr<PoolState> state;
        Shard* shard;
        Waiter* waiter;
        void operator()(boost::asio::cancellation_type type) const {
            if (type != boost::asio::cancellation_type::none) {
                state->cancel_waiter(*shard, *waiter);
            }
        }
    };

    /// A waiter for a concrete handler type.
    template <typename Handler>
    class WaiterOp final : public Waiter {
      public:
        WaiterOp(Handler handler, const boost::asio::any_io_executor& fallback)
            : Waiter(boost::asio::get_associated_executor(handler, fallback)),
              handler_(std::move(handler)) {}

        /// Call before the waiter is queued (once queued, another thread may complete it).
        void install_cancellation(std::shared_ptr<PoolState> state, Shard& shard) {
            auto slot = boost::asio::get_associated_cancellation_slot(handler_);
            if (slot.is_connected()) {
                slot.template emplace<CancelWaiter>(std::move(state), &shard, this);
            }
        }

        void invoke(const Result& result) override {
            // Here, on the handler's executor where its cancellation is emitted, the cancellation
            // handler (which points at this waiter) goes first.
            boost::asio::get_associated_cancellation_slot(handler_).clear();
            Handler handler = std::move(handler_);
            delete this;
            std::move(handler)(result.ec, result.client);
        }

      private:
        Handler handler_;
    };

    /// Waiters completed together: consecutive waiters of one flight whose handlers share an
    /// executor are resumed by one posted function (at most `max_size` of them, so other work on
    /// that executor is not held up for long). This is what makes a herd's wake-up cost about one
    /// handler call per waiter rather than one post each.
    struct Completion {
        static constexpr std::size_t max_size = 128;

        Result result;
        std::vector<Waiter*> waiters;  // owned
        std::size_t next = 0;
        bool started = false;

        explicit Completion(Result r) : result(std::move(r)) {}
        Completion(const Completion&) = delete;
        Completion& operator=(const Completion&) = delete;
        ~Completion() {
            if (!started) {  // never ran (its executor's context was destroyed): drop the waiters
                for (std::size_t i = next; i < waiters.size(); ++i) {
                    delete waiters[i];
                }
            } else if (next < waiters.size()) {  // a handler threw: the rest are not lost
                auto rest = std::make_unique<Completion>(result);
                rest->waiters.assign(waiters.begin() + static_cast<std::ptrdiff_t>(next),
                                     waiters.end());
                post(std::move(rest));
            }
        }

        static void post(std::unique_ptr<Completion> completion) {
            auto executor = completion->waiters.front()->executor;
            boost::asio::post(executor, [completion = std::move(completion)] {
                auto& c = *completion;
                c.started = true;
                while (c.next < c.waiters.size()) {
                    c.waiters[c.next++]->invoke(c.result);
                }
            });
        }
    };

    /// Completes `waiters` (owned, unlinked) with `result`, in order, one post per run of waiters
    /// sharing an executor.
    template <typename Take>
    static void complete(Result result, Take take_next) {
        std::unique_ptr<Completion> batch;
        while (Waiter* waiter = take_next()) {
            if (batch && (batch->waiters.size() == Completion::max_size ||
                          batch->waiters.front()->executor != waiter->executor)) {
                Completion::post(std::move(batch));
            }
            if (!batch) {
                batch = std::make_unique<Completion>(result);
            }
            batch->waiters.push_back(waiter);
        }
        if (batch) {
            Completion::post(std::move(batch));
        }
    }

    static void complete_one(std::unique_ptr<Waiter> waiter, Result result) {
        complete(std::move(result),
                 [w = waiter.release()]() mutable { return std::exchange(w, nullptr); });
    }

    /// Builds the key's client for the flight's waiters, on the flight's strand; completes them.
    static boost::asio::awaitable<void> run_flight(std::shared_ptr<PoolState> self, Key key,
                                                   std::shared_ptr<Flight> flight) {
        co_await boost::asio::this_coro::throw_if_cancelled(false);
        OperationScope scope(*self, /*is_waiter=*/false);
        for (;;) {
            Result result;
            try {
                result = co_await self->build(key, *flight);
            } catch (const std::exception&) {  // only allocation failure: build does not throw
                result = {ResultCode::connect_failed, nullptr};
            }
            if (self->finish_flight(key, *flight, std::move(result))) {
                break;
            }
            // Every waiter was cancelled, so the build was, but gets joined since: build for them.
        }
    }

    /// Ends a flight: completes its waiters with `result` and forgets it. Returns false instead
    /// when the build was cancelled because every waiter left, but gets have joined since.
    bool finish_flight(const Key& key, Flight& flight, Result result) {
        WaiterList done;
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            if (result.ec == boost::asio::error::operation_aborted && !shutting_down() &&
                !flight.waiters.empty()) {
                return false;
            }
            flight.finished = true;
            done.splice(done.end(), flight.waiters);
            shard.flights.erase(key);
        }
        flights_.fetch_sub(1, std::memory_order_relaxed);
        std::size_t count = 0;
        complete(std::move(result), [&]() -> Waiter* {
            if (done.empty()) {
                return nullptr;
            }
            Waiter& waiter = done.front();
            done.pop_front();
            ++count;
            return &waiter;
        });
        waiters_.fetch_sub(count, std::memory_order_relaxed);
        return true;
    }

    /// A waiter's get was cancelled: completes it with `operation_aborted` unless it was completed
    /// already; cancels the build if nobody else waits for it.
    void cancel_waiter(Shard& shard, Waiter& waiter) {
        std::unique_ptr<Waiter> owned;
        std::shared_ptr<Flight> abandoned;
        {
            std::lock_guard lock(shard.mutex);
            Flight& flight = *waiter.flight;
            if (flight.finished || !waiter.queued) {
                return;  // completed already; the completion is on its way
            }
            flight.waiters.erase(flight.waiters.iterator_to(waiter));
            waiter.queued = false;
            owned.reset(&waiter);
            if (flight.waiters.empty()) {
                abandoned = waiter.flight;
            }
        }
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        complete_one(std::move(owned), Result{boost::asio::error::operation_aborted, nullptr});
        if (abandoned) {
            boost::asio::post(abandoned->strand,
                              [self = this->shared_from_this(), &shard, abandoned] {
                                  {
                                      std::lock_guard lock(shard.mutex);
                                      if (abandoned->finished || !abandoned->waiters.empty()) {
                                          return;  // ended, or someone joined meanwhile
                                      }
                                  }
                                  if (auto build = abandoned->build.lock()) {
                                      build->abandoned = true;
                                      build->timer.cancel();
                                  }
                              });
        }
    }

    /// Completes every waiting get with `ec` (shutdown); their builds go on until cancelled.
    void fail_waiters(boost::system::error_code ec) {
        for (auto& shard : shards_) {
            std::vector<Waiter*> taken;
            {
                std::lock_guard lock(shard.mutex);
                for (auto& [key, flight] : shard.flights) {
                    while (!flight->waiters.empty()) {
                        Waiter& waiter = flight->waiters.front();
                        flight->waiters.pop_front();
                        waiter.queued = false;
                        taken.push_back(&waiter);
                    }
                }
            }
            waiters_.fetch_sub(taken.size(), std::memory_order_relaxed);
            std::size_t i = 0;
            complete(Result{ec, nullptr},
                     [&]() -> Waiter* { return i < taken.size() ? taken[i++] : nullptr; });
        }
    }

    /// A build in flight, reachable by shutdown. The timer bounds each wait of the build (slot,
    /// then factory); shutdown, or the last waiter leaving, cancels it on the build's strand, which
    /// ends whichever wait is running.
    struct BuildHandle {
        explicit BuildHandle(const boost::asio::any_io_executor& ex) : executor(ex), timer(ex) {}
        boost::asio::any_io_executor executor;
        boost::asio::steady_timer timer;
        bool abandoned = false;  // every waiter left; on the strand
    };

    /// Counts an operation in flight (and, for gets, a waiter); the last one out after shutdown
    /// began wakes `shutdown()`.
    class OperationScope {
      public:
        OperationScope(PoolState& state, bool is_waiter) : state_(state), is_waiter_(is_waiter) {
            state_.outstanding_.fetch_add(1);
            if (is_waiter_) {
                state_.waiters_.fetch_add(1, std::memory_order_relaxed);
            }
        }
        ~OperationScope() {
            if (is_waiter_) {
                state_.waiters_.fetch_sub(1, std::memory_order_relaxed);
            }
            if (state_.outstanding_.fetch_sub(1) == 1 && state_.shutting_down()) {
                state_.drained_.try_send(boost::system::error_code{});
            }
        }
        OperationScope(const OperationScope&) = delete;
        OperationScope& operator=(const OperationScope&) = delete;

      private:
        PoolState& state_;
        bool is_waiter_;
    };

    /// Registers a build for the duration of a scope.
    class BuildRegistration {
      public:
        BuildRegistration(PoolState& state, std::shared_ptr<BuildHandle> handle) : state_(state) {
            std::lock_guard lock(state_.builds_mutex_);
            it_ = state_.builds_.insert(state_.builds_.end(), std::move(handle));
        }
        ~BuildRegistration() {
            std::lock_guard lock(state_.builds_mutex_);
            state_.builds_.erase(it_);
        }
        BuildRegistration(const BuildRegistration&) = delete;
        BuildRegistration& operator=(const BuildRegistration&) = delete;

      private:
        PoolState& state_;
        typename std::list<std::shared_ptr<BuildHandle>>::iterator it_;
    };

    /// A `max_clients` unit held by a build; returned unless handed to a cached client.
    class SlotUnit {
      public:
        explicit SlotUnit(PoolState& state) : state_(state) {}
        ~SlotUnit() {
            if (held_) {
                state_.slots_->release();
            }
        }
        SlotUnit(const SlotUnit&) = delete;
        SlotUnit& operator=(const SlotUnit&) = delete;
        void hold() noexcept { held_ = true; }
        void transfer() noexcept { held_ = false; }  // now owned by the cached client

      private:
        PoolState& state_;
        bool held_ = false;
    };

    static const PoolOptions& checked(const PoolOptions& options) {
        validate(options);
        return options;
    }

    bool track_idle() const noexcept { return options_.idle_timeout.count() > 0; }

    Shard& shard_for(const Key& key) {
        // Fibonacci hashing spreads identity hashes (std::hash<int>) over the shards.
        const std::uint64_t h = static_cast<std::uint64_t>(Hash{}(key)) * 0x9E3779B97F4A7C15ULL;
        return shards_[h >> 60];
    }

    /// Under `shard`'s lock, for a get that missed: is there still something to build (or a build
    /// in flight to join)? `observed` is `event_seq_` when the get looked first.
    Recheck recheck(Shard& shard, const Key& key, std::uint64_t observed) {
        auto it = shard.map.find(key);
        if (it == shard.map.end()) {
            return Recheck::build_it();
        }
        Slot& slot = it->second;
        if (slot.client) {
            if (Traits::is_healthy(*slot.client)) {
                if (track_idle()) {
                    slot.last_used = clock::now();
                }
                return Recheck::finish({}, slot.client);
            }
            // It was healthy when built (see build()), so it broke since: replace it.
            return Recheck::build_it(take_slot(shard, it));
        }
        if (slot.failure) {
            if (slot.seq > observed) {  // a build failed since this get looked: same error
                return Recheck::finish(slot.failure);
            }
            if (shard.flights.count(key) == 0 && clock::now() < slot.retry_at) {
                return Recheck::finish(ResultCode::backoff);
            }
        }
        return Recheck::build_it();
    }

    /// Removes a slot under its shard lock; returns its client (to close), if any.
    client_ptr take_slot(Shard& shard, typename decltype(Shard::map)::iterator it) {
        client_ptr client = std::move(it->second.client);
        if (client) {
            cached_.fetch_sub(1, std::memory_order_relaxed);
        } else if (it->second.failure) {
            --shard.failure_records;
        }
        shard.map.erase(it);
        return client;
    }

    /// Builds the key's client for its flight (the only build for that key).
    boost::asio::awaitable<Result> build(const Key& key, Flight& flight) {
        auto executor = co_await boost::asio::this_coro::executor;
        auto handle = std::make_shared<BuildHandle>(executor);
        flight.build = handle;
        BuildRegistration registration(*this, handle);
        SlotUnit unit(*this);
        if (slots_) {
            auto ec = co_await acquire_slot(*handle);
            if (ec) {
                if (ec == ResultCode::pool_exhausted) {
                    record_failure(key, ec);
                }
                co_return Result{ec, nullptr};
            }
            unit.hold();
        }
        if (shutting_down()) {
            co_return Result{ResultCode::shutting_down, nullptr};
        }
        if (options_.connect_timeout.count() > 0) {
            handle->timer.expires_after(options_.connect_timeout);
        } else {
            handle->timer.expires_at(clock::time_point::max());
        }
        if (auto log = logger(); log->should_log(spdlog::level::debug)) {
            log->debug("keyedpool: building client for {}", describe_key(key));
        }
        namespace asio = boost::asio;
        auto [order, exception, made, timer_ec] =
            co_await asio::experimental::make_parallel_group(
                asio::co_spawn(executor, call_factory(key), asio::deferred),
                handle->timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        const bool cancelled = handle->abandoned;
        if (made) {
            built_.fetch_add(1, std::memory_order_relaxed);
            live_clients_.fetch_add(1, std::memory_order_relaxed);
        }

        boost::system::error_code ec;
        if (shutting_down()) {
            ec = ResultCode::shutting_down;
        } else if (order[0] == 0 && made) {
            ec = {};  // the factory won; keep its client even if cancellation came late
        } else if (cancelled) {
            ec = asio::error::operation_aborted;
        } else if (order[0] == 1) {
            ec = timer_ec ? boost::system::error_code(asio::error::operation_aborted)
                          : boost::system::error_code(ResultCode::timeout);
        } else if (exception) {
            ec = error_code_of(exception, ResultCode::connect_failed);
            log_factory_exception(key, exception);
        } else {
            ec = ResultCode::connect_failed;  // the factory returned a null client
        }
        if (!ec && !Traits::is_healthy(*made)) {
            // Born broken: a failure like any other (shared by the waiters, backoff), rather than
            // a rebuild by each waiter in turn.
            ec = ResultCode::unhealthy;
        }

        if (ec) {
            if (made) {
                close_client(std::move(made), "build abandoned");
            }
            if (ec != asio::error::operation_aborted && ec != ResultCode::shutting_down) {
                build_failures_.fetch_add(1, std::memory_order_relaxed);
                record_failure(key, ec);
            }
            co_return Result{ec, nullptr};
        }
        if (!store(key, made)) {
            close_client(std::move(made), "shutdown");
            co_return Result{ResultCode::shutting_down, nullptr};
        }
        unit.transfer();
        co_return Result{{}, std::move(made)};
    }

    boost::asio::awaitable<client_ptr> call_factory(const Key& key) {
        co_return co_await factory_(key);
    }

    /// Waits (up to wait_timeout) for a `max_clients` unit.
    boost::asio::awaitable<boost::system::error_code> acquire_slot(BuildHandle& handle) {
        namespace asio = boost::asio;
        if (slots_->try_acquire()) {
            co_return boost::system::error_code{};
        }
        if (options_.wait_timeout.count() == 0) {
            co_return ResultCode::pool_exhausted;
        }
        if (shutting_down()) {
            co_return ResultCode::shutting_down;
        }
        handle.timer.expires_after(options_.wait_timeout);
        auto [order, acquire_ec, timer_ec] =
            co_await asio::experimental::make_parallel_group(
                slots_->async_acquire(asio::deferred), handle.timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        (void)order;
        (void)timer_ec;
        if (!acquire_ec) {
            co_return boost::system::error_code{};  // success means the unit is held
        }
        if (shutting_down()) {
            co_return ResultCode::shutting_down;
        }
        if (handle.abandoned) {
            co_return asio::error::operation_aborted;
        }
        logger()->warn("keyedpool: no client slot freed within wait_timeout (max_clients={})",
                       options_.max_clients);
        co_return ResultCode::pool_exhausted;
    }

    /// Caches a new client; false when shutdown began (the caller closes it).
    bool store(const Key& key, const client_ptr& client) {
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            if (shutting_down()) {
                return false;
            }
            Slot& slot = shard.map[key];
            if (slot.failure) {
                --shard.failure_records;
            }
            slot.failure = {};
            slot.consecutive_failures = 0;
            slot.client = client;
            slot.last_used = clock::now();
            slot.seq = event_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
            cached_.fetch_add(1, std::memory_order_relaxed);
        }
        if (auto log = logger(); log->should_log(spdlog::level::debug)) {
            log->debug("keyedpool: built client for {}", describe_key(key));
        }
        ensure_sweeper();
        return true;
    }

    /// Remembers a failed build so the gets that waited for it all receive `ec`, and later gets
    /// fail fast with `backoff` until the retry deadline. `pool_exhausted` sets no backoff.
    void record_failure(const Key& key, boost::system::error_code ec) {
        const auto now = clock::now();
        unsigned consecutive = 0;
        {
            Shard& shard = shard_for(key);
            std::lock_guard lock(shard.mutex);
            auto [it, inserted] = shard.map.try_emplace(key);
            Slot& slot = it->second;
            if (inserted || !slot.failure) {
                ++shard.failure_records;
            }
            const bool backs_off = ec != ResultCode::pool_exhausted;
            consecutive = slot.consecutive_failures + (backs_off ? 1 : 0);
            slot.failure = ec;
            slot.consecutive_failures = consecutive;
            slot.retry_at = backs_off ? now + backoff_delay(options_.backoff, consecutive) : now;
            slot.seq = event_seq_.fetch_add(1, std::memory_order_relaxed) + 1;
            if (shard.failure_records > shard.prune_threshold) {
                prune_expired_failures(shard, now);
            }
        }
        logger()->warn("keyedpool: building client for {} failed: {} ({}), failure #{} in a row",
                       describe_key(key), ec.message(), ec.to_string(), consecutive);
    }

    /// Drops failure records past their retry deadline (their keys may never be asked for again).
    /// Amortised: runs when the count doubles since the last prune.
    void prune_expired_failures(Shard& shard, clock::time_point now) {
        for (auto it = shard.map.begin(); it != shard.map.end();) {
            if (!it->second.client && now >= it->second.retry_at) {
                --shard.failure_records;
                it = shard.map.erase(it);
            } else {
                ++it;
            }
        }
        shard.prune_threshold = std::max<std::size_t>(64, 2 * shard.failure_records);
    }

    void log_factory_exception(const Key& key, const std::exception_ptr& exception) {
        try {
            std::rethrow_exception(exception);
        } catch (const std::exception& e) {
            logger()->warn("keyedpool: factory for {} threw: {}", describe_key(key), e.what());
        } catch (...) {
            logger()->warn("keyedpool: factory for {} threw a non-standard exception",
                           describe_key(key));
        }
    }

    /// Closes a client the factory produced. Called exactly once per client.
    void close_client(client_ptr client, const char* reason) noexcept {
        try {
            Traits::close(*client);
        } catch (const std::exception& e) {
            logger()->error("keyedpool: closing a client ({}) threw: {}", reason, e.what());
        } catch (...) {
            logger()->error("keyedpool: closing a client ({}) threw", reason);
        }
        closes_.fetch_add(1, std::memory_order_relaxed);
        live_clients_.fetch_sub(1, std::memory_order_relaxed);
        logger()->debug("keyedpool: closed a client ({})", reason);
    }

    /// Closes a client that was cached, returning its `max_clients` unit.
    void close_cached(client_ptr client, const char* reason) noexcept {
        close_client(std::move(client), reason);
        if (slots_) {
            slots_->release();
        }
    }

    // ---- idle eviction ---------------------------------------------------------------------

    void ensure_sweeper() {
        if (!track_idle() || sweeper_running_.exchange(true)) {
            return;
        }
        boost::asio::co_spawn(strand_, sweep(this->shared_from_this()), boost::asio::detached);
    }

    /// Runs while clients are cached: every idle_timeout/2, closes clients idle for idle_timeout.
    static boost::asio::awaitable<void> sweep(std::shared_ptr<PoolState> self) {
        OperationScope scope(*self, /*is_waiter=*/false);
        const auto period = std::max<clock::duration>(self->options_.idle_timeout / 2,
                                                      std::chrono::milliseconds(1));
        while (!self->shutting_down()) {
            self->sweep_timer_.expires_after(period);
            co_await self->sweep_timer_.async_wait(
                boost::asio::as_tuple(boost::asio::use_awaitable));
            if (self->shutting_down()) {
                break;
            }
            self->evict_idle();
            if (self->cached_.load() == 0) {
                // Stop; but if a client was stored meanwhile and its store saw us running, go on.
                self->sweeper_running_.store(false);
                if (self->cached_.load() == 0 || self->sweeper_running_.exchange(true)) {
                    break;
                }
            }
        }
    }

    void evict_idle() {
        const auto now = clock::now();
        for (auto& shard : shards_) {
            std::vector<client_ptr> victims;
            {
                std::lock_guard lock(shard.mutex);
                for (auto it = shard.map.begin(); it != shard.map.end();) {
                    Slot& slot = it->second;
                    const bool idle = slot.client &&
                                      now - slot.last_used >= options_.idle_timeout &&
                                      slot.client.use_count() == 1;  // nobody outside holds it
                    const bool expired_failure = !slot.client && now >= slot.retry_at;
                    if (idle || expired_failure) {
                        if (auto client = take_slot_at(shard, it)) {
                            victims.push_back(std::move(client));
                        }
                    } else {
                        ++it;
                    }
                }
            }
            for (auto& victim : victims) {
                evictions_.fetch_add(1, std::memory_order_relaxed);
                close_cached(std::move(victim), "idle");
            }
        }
    }

    /// take_slot for iteration: advances `it` past the erased slot.
    client_ptr take_slot_at(Shard& shard, typename decltype(Shard::map)::iterator& it) {
        auto next = std::next(it);
        client_ptr client = take_slot(shard, it);
        it = next;
        return client;
    }

    const boost::asio::any_io_executor executor_;
    const factory_type factory_;
    const PoolOptions options_;
    boost::asio::strand<boost::asio::any_io_executor> strand_;  // sweeper
    std::array<Shard, 16> shards_;
    std::optional<AsyncSemaphore> slots_;  // max_clients units, when limited
    std::mutex builds_mutex_;
    std::list<std::shared_ptr<BuildHandle>> builds_;  // guarded by builds_mutex_
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> drained_;
    boost::asio::steady_timer sweep_timer_;  // on strand_
    std::atomic<bool> sweeper_running_{false};
    std::atomic<bool> shutting_down_{false};
    std::atomic<std::uint64_t> event_seq_{0};
    std::atomic<std::size_t> outstanding_{0};
    std::atomic<std::size_t> cached_{0};
    std::atomic<std::size_t> flights_{0};
    std::atomic<std::uint64_t> misses_{0};
    std::atomic<std::uint64_t> built_{0};
    std::atomic<std::uint64_t> build_failures_{0};
    std::atomic<std::uint64_t> waiters_{0};
    std::atomic<std::uint64_t> live_clients_{0};
    std::atomic<std::uint64_t> evictions_{0};
    std::atomic<std::uint64_t> closes_{0};
};

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_POOL_STATE_HPP
