// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Misses under load, each beside its baseline from baselines.hpp (same run, same
// machine):
//   herd   10,000 waiters on one key, 1 ms factory: factory calls, and wake-up per waiter after the
//          build, against one asio::post round trip;
//   spread 1,000 keys x 10 waiters, 1 ms factory: total time, against the global-lock baseline;
//   naive  the double-checked cache under the same herd: how many connections it makes;
//   first builds  100,000 keys, one get each, a factory that returns at once: time and heap
//          allocations per build, against a coroutine per key that builds into a map.
#include "allocation_counter.hpp"
#include "baselines.hpp"

#include <keyedpool/async_mutex.hpp>
#include <keyedpool/keyed_client_pool.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio.hpp>

#include <chrono>
#include <unordered_map>

namespace asio = boost::asio;
using keyedpool::bench::Client;
using keyedpool::bench::ClientPtr;
using clock_type = std::chrono::steady_clock;

namespace {

using Pool = keyedpool::KeyedClientPool<int, Client>;

/// A factory taking `delay` (a timer, like a connect), counting calls and remembering when the
/// last build finished.
struct SlowFactory {
    std::chrono::microseconds delay;
    int calls = 0;
    clock_type::time_point last_call{};
    clock_type::time_point finished{};

    asio::awaitable<ClientPtr> operator()(int key) {
        ++calls;
        last_call = clock_type::now();
        asio::steady_timer t(co_await asio::this_coro::executor, delay);
        co_await t.async_wait(asio::use_awaitable);
        finished = clock_type::now();
        co_return std::make_shared<Client>(Client{key});
    }
};

void BM_Baseline_PostRoundTrip(benchmark::State& state) {
    asio::io_context io;
    for (auto _ : state) {
        bool ran = false;
        asio::post(io, [&] { ran = true; });
        io.restart();
        io.run_one();
        benchmark::DoNotOptimize(ran);
    }
}
BENCHMARK(BM_Baseline_PostRoundTrip);

/// Waiters per herd, for the pool and the naive baseline alike.
void herd_sizes(benchmark::internal::Benchmark* b) {
    for (int waiters : {100, 1'000, 3'000, 10'000}) {
        b->Arg(waiters);
    }
    b->Unit(benchmark::kMillisecond);
}

/// Pool options for a benchmark argument: 1 = builds on strands (the default), 0 = builds on the
/// pool's executor (`build_on_strand = false`, for an io_context run by one thread, as here).
keyedpool::PoolOptions options_for(const benchmark::State& state) {
    keyedpool::PoolOptions options;
    options.build_on_strand = state.range(0) != 0;
    return options;
}

void BM_Pool_Herd(benchmark::State& state) {
    const int waiters = static_cast<int>(state.range(0));
    double wake_ns_per_waiter = 0;
    int factory_calls = 0;
    for (auto _ : state) {
        asio::io_context io;
        SlowFactory factory{std::chrono::milliseconds(1)};
        Pool pool(io.get_executor(), [&](const int& k) { return factory(k); });
        clock_type::time_point last_resumed{};
        int served = 0;
        for (int i = 0; i < waiters; ++i) {
            pool.async_get(1, [&](boost::system::error_code ec, ClientPtr c) {
                if (!ec && c) {
                    ++served;
                    last_resumed = clock_type::now();
                }
            });
        }
        io.run();
        factory_calls += factory.calls;
        wake_ns_per_waiter +=
            std::chrono::duration<double, std::nano>(last_resumed - factory.finished).count() /
            waiters;
        if (served != waiters) {
            state.SkipWithError("not every waiter was served");
        }
        keyedpool::bench::shutdown_and_drain(pool, io);
    }
    state.counters["factory_calls_per_run"] =
        static_cast<double>(factory_calls) / state.iterations();
    state.counters["wake_ns_per_waiter"] = wake_ns_per_waiter / state.iterations();
}
BENCHMARK(BM_Pool_Herd)->Apply(herd_sizes);

/// Wall time from the first get to the last completion (pool construction and shutdown excluded).
void BM_Pool_Spread(benchmark::State& state) {
    double initiate_ms = 0;
    double last_build_ms = 0;
    for (auto _ : state) {
        asio::io_context io;
        SlowFactory factory{std::chrono::milliseconds(1)};
        Pool pool(
            io.get_executor(), [&](const int& k) { return factory(k); }, options_for(state));
        int served = 0;
        clock_type::time_point last{};
        const auto start = clock_type::now();
        for (int i = 0; i < 10'000; ++i) {
            pool.async_get(i % 1000, [&](boost::system::error_code ec, ClientPtr) {
                served += ec ? 0 : 1;
                last = clock_type::now();
            });
        }
        initiate_ms += std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
        io.run();
        state.SetIterationTime(std::chrono::duration<double>(last - start).count());
        state.counters["factory_calls"] = factory.calls;
        last_build_ms +=
            std::chrono::duration<double, std::milli>(factory.last_call - start).count();
        if (served != 10'000) {
            state.SkipWithError("not every get was served");
        }
        keyedpool::bench::shutdown_and_drain(pool, io);
    }
    state.counters["initiate_ms"] = initiate_ms / state.iterations();
    state.counters["last_build_started_ms"] = last_build_ms / state.iterations();
}
BENCHMARK(BM_Pool_Spread)
    ->ArgName("strand")
    ->Arg(1)
    ->Arg(0)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

/// The rejected alternative: one async lock around the whole get, build included.
void BM_Baseline_GlobalLockSpread(benchmark::State& state) {
    for (auto _ : state) {
        asio::io_context io;
        SlowFactory factory{std::chrono::milliseconds(1)};
        keyedpool::AsyncMutex lock(io.get_executor());
        std::unordered_map<int, ClientPtr> cache;
        for (int i = 0; i < 10'000; ++i) {
            asio::co_spawn(
                io,
                [&, key = i % 1000]() -> asio::awaitable<void> {
                    auto guard = co_await lock.async_scoped_lock();
                    if (!cache.contains(key)) {
                        cache[key] = co_await factory(key);
                    }
                },
                asio::detached);
        }
        io.run();
        state.counters["factory_calls"] = factory.calls;
    }
}
BENCHMARK(BM_Baseline_GlobalLockSpread)->Unit(benchmark::kMillisecond)->Iterations(1);

/// The double-checked cache that releases its lock while connecting, under the herd.
void BM_Baseline_NaiveHerd(benchmark::State& state) {
    const int waiters = static_cast<int>(state.range(0));
    int calls = 0;
    for (auto _ : state) {
        asio::io_context io;
        SlowFactory factory{std::chrono::milliseconds(1)};
        std::unordered_map<int, ClientPtr> cache;
        for (int i = 0; i < waiters; ++i) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    if (cache.contains(1)) {
                        co_return;
                    }
                    auto client = co_await factory(1);  // "lock" released while connecting
                    cache[1] = client;                  // the others are leaked
                },
                asio::detached);
        }
        io.run();
        calls += factory.calls;
    }
    state.counters["factory_calls_per_run"] = static_cast<double>(calls) / state.iterations();
}
BENCHMARK(BM_Baseline_NaiveHerd)->Apply(herd_sizes);

/// 100,000 first builds: one get per key with an immediate factory, from the first get to the
/// last completion; allocations per build counted in the same window.
void BM_Pool_FirstBuilds(benchmark::State& state) {
    constexpr int keys = 100'000;
    double allocations = 0;
    for (auto _ : state) {
        asio::io_context io;
        Pool pool(io.get_executor(), keyedpool::bench::make_client, options_for(state));
        int served = 0;
        const auto allocations_before = keyedpool::bench::allocations();
        const auto start = clock_type::now();
        for (int i = 0; i < keys; ++i) {
            pool.async_get(i,
                           [&](boost::system::error_code ec, ClientPtr) { served += ec ? 0 : 1; });
        }
        io.run();
        state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - start).count());
        allocations += static_cast<double>(keyedpool::bench::allocations() - allocations_before);
        if (served != keys) {
            state.SkipWithError("not every get was served");
        }
        keyedpool::bench::shutdown_and_drain(pool, io);
    }
    state.counters["allocations_per_build"] = allocations / state.iterations() / keys;
}
BENCHMARK(BM_Pool_FirstBuilds)
    ->ArgName("strand")
    ->Arg(1)
    ->Arg(0)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

/// Floor for first builds: a coroutine per key that makes the client and stores it in a map.
void BM_Baseline_FirstBuildsCoroutineMap(benchmark::State& state) {
    constexpr int keys = 100'000;
    double allocations = 0;
    for (auto _ : state) {
        asio::io_context io;
        std::unordered_map<int, ClientPtr> cache;
        const auto allocations_before = keyedpool::bench::allocations();
        const auto start = clock_type::now();
        for (int i = 0; i < keys; ++i) {
            asio::co_spawn(
                io,
                [&cache, i]() -> asio::awaitable<void> {
                    cache[i] = co_await keyedpool::bench::make_client(i);
                },
                asio::detached);
        }
        io.run();
        state.SetIterationTime(std::chrono::duration<double>(clock_type::now() - start).count());
        allocations += static_cast<double>(keyedpool::bench::allocations() - allocations_before);
    }
    state.counters["allocations_per_build"] = allocations / state.iterations() / keys;
}
BENCHMARK(BM_Baseline_FirstBuildsCoroutineMap)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
