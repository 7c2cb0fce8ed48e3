// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Memory, counted with glibc's mallinfo2 (bytes in use on the heap), each beside a
// baseline measured the same way in the same run:
//   per cached key   beyond the key and the client, against std::unordered_map<int, shared_ptr>;
//   per waiter       a spawned coroutine waiting in async_get for a build, against one waiting on
//                    a steady_timer (frames included: the difference is the pool's);
//   churn            1,000,000 keys built and evicted as idle: bookkeeping left (lock entries,
//                    cached clients, heap bytes) and RSS at the end against the start.
#include "baselines.hpp"

#include <keyedpool/keyed_client_pool.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio.hpp>

#include <cstdlib>
#include <fstream>
#include <unordered_map>

#include <malloc.h>
#include <unistd.h>

namespace {

/// Bytes in use on the heap (glibc's count: every malloc, including Asio's own recycling
/// allocations, which bypass operator new). Single-threaded here, so the main arena is all.
long long heap_bytes() {
    const auto info = mallinfo2();
    return static_cast<long long>(info.uordblks + info.hblkhd);
}

}  // namespace

namespace asio = boost::asio;
using keyedpool::bench::Client;
using keyedpool::bench::ClientPtr;

namespace {

using Pool = keyedpool::KeyedClientPool<int, Client>;

using keyedpool::bench::make_client;

long long bytes_of_one_client() {
    const auto before = heap_bytes();
    auto c = std::make_shared<Client>();
    return heap_bytes() - before;
}

constexpr int keys = 100'000;

void BM_Baseline_MapBytesPerKey(benchmark::State& state) {
    for (auto _ : state) {
        const auto before = heap_bytes();
        std::unordered_map<int, ClientPtr> map;
        for (int k = 0; k < keys; ++k) {
            map.emplace(k, std::make_shared<Client>(Client{k}));
        }
        const auto used = heap_bytes() - before;
        state.counters["bytes_per_key"] =
            static_cast<double>(used - keys * bytes_of_one_client()) / keys -
            static_cast<double>(sizeof(int));
    }
}
BENCHMARK(BM_Baseline_MapBytesPerKey)->Iterations(1);

void BM_Pool_BytesPerCachedKey(benchmark::State& state) {
    for (auto _ : state) {
        asio::io_context io;
        long long used = 0;
        {
            const auto before = heap_bytes();
            Pool pool(io.get_executor(), make_client);
            for (int k = 0; k < keys; ++k) {
                pool.async_get(k, [](boost::system::error_code, ClientPtr) {});
            }
            io.run();
            used = heap_bytes() - before;
            if (pool.size() != static_cast<std::size_t>(keys)) {
                state.SkipWithError("not every key was cached");
            }
            keyedpool::bench::shutdown_and_drain(pool, io);
        }
        state.counters["bytes_per_key"] =
            static_cast<double>(used - keys * bytes_of_one_client()) / keys -
            static_cast<double>(sizeof(int));
    }
}
BENCHMARK(BM_Pool_BytesPerCachedKey)->Iterations(1);

constexpr int waiters = 10'000;

void BM_Baseline_TimerWaiterBytes(benchmark::State& state) {
    for (auto _ : state) {
        asio::io_context io;
        asio::steady_timer timer(io, std::chrono::hours(1));
        const auto before = heap_bytes();
        for (int i = 0; i < waiters; ++i) {
            asio::co_spawn(
                io,
                [&]() -> asio::awaitable<void> {
                    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
                },
                asio::detached);
        }
        io.poll();
        state.counters["bytes_per_waiter"] = static_cast<double>(heap_bytes() - before) / waiters;
        timer.cancel();
        io.run();
    }
}
BENCHMARK(BM_Baseline_TimerWaiterBytes)->Iterations(1);

void BM_Pool_WaiterBytes(benchmark::State& state) {
    for (auto _ : state) {
        asio::io_context io;
        asio::steady_timer gate(io, std::chrono::hours(1));
        Pool pool(io.get_executor(), [&](const int& k) -> asio::awaitable<ClientPtr> {
            co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));  // a build that waits
            co_return std::make_shared<Client>(Client{k});
        });
        // The first get starts the build; measure the others, which only wait for it.
        pool.async_get(1, [](boost::system::error_code, ClientPtr) {});
        io.poll();
        const auto before = heap_bytes();
        for (int i = 0; i < waiters; ++i) {
            asio::co_spawn(
                io, [&]() -> asio::awaitable<void> { co_await pool.async_get(1); }, asio::detached);
        }
        io.poll();
        state.counters["bytes_per_waiter"] = static_cast<double>(heap_bytes() - before) / waiters;
        if (pool.stats().waiters != static_cast<std::uint64_t>(waiters + 1)) {
            state.SkipWithError("the waiters are not all waiting");
        }
        gate.cancel();
        io.run();
        keyedpool::bench::shutdown_and_drain(pool, io);
    }
}
BENCHMARK(BM_Pool_WaiterBytes)->Iterations(1);

long long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

/// 1,000,000 distinct keys, built 10,000 at a time, evicted as idle (1 ms) between batches.
void BM_Pool_MillionKeyChurn(benchmark::State& state) {
    for (auto _ : state) {
        asio::io_context io;
        keyedpool::PoolOptions options;
        options.idle_timeout = std::chrono::milliseconds(1);
        Pool pool(io.get_executor(), make_client, options);
        // Warm: one batch and its eviction, so the start figures include the steady state.
        auto batch = [&](int first) {
            for (int k = first; k < first + 10'000; ++k) {
                pool.async_get(k, [](boost::system::error_code, ClientPtr) {});
            }
            io.restart();
            io.run();  // builds, then the sweeper evicts everything and stops
        };
        batch(0);
        const auto rss_start = rss_bytes();
        const auto heap_start = heap_bytes();
        for (int first = 10'000; first < 1'010'000; first += 10'000) {
            batch(first);
        }
        state.counters["open_flights_end"] = static_cast<double>(pool.open_flights());
        state.counters["cached_end"] = static_cast<double>(pool.size());
        state.counters["heap_growth_bytes"] = static_cast<double>(heap_bytes() - heap_start);
        state.counters["rss_start_mib"] = static_cast<double>(rss_start) / (1 << 20);
        state.counters["rss_end_mib"] = static_cast<double>(rss_bytes()) / (1 << 20);
        state.counters["builds"] = static_cast<double>(pool.stats().builds);
        state.counters["evictions"] = static_cast<double>(pool.stats().evictions);
        keyedpool::bench::shutdown_and_drain(pool, io);
    }
}
BENCHMARK(BM_Pool_MillionKeyChurn)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
