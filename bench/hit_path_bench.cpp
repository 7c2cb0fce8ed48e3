// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Hit path: a cached, healthy key, against the floors in baselines.hpp (same run, same
// machine); on one thread, and from two threads at once (one hot key, and 1,000 keys spread).
#include "baselines.hpp"

#include <keyedpool/keyed_client_pool.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio.hpp>
#include <boost/asio/use_future.hpp>

namespace asio = boost::asio;
using keyedpool::bench::Client;
using keyedpool::bench::ClientPtr;

namespace {

using Pool = keyedpool::KeyedClientPool<int, Client>;

using keyedpool::bench::make_client;

// Runs `body` inside a coroutine on a single-threaded io_context (the state loop runs in it).
template <typename Body>
void in_coroutine(Body body) {
    asio::io_context io;
    asio::co_spawn(io, body(io), asio::detached);
    io.run();
}

void BM_Baseline_CoAwaitPlainCoroutineMapLookup(benchmark::State& state) {
    std::unordered_map<int, ClientPtr> map{{1, std::make_shared<Client>()}};
    in_coroutine([&](asio::io_context&) -> asio::awaitable<void> {
        for (auto _ : state) {
            auto client = co_await keyedpool::bench::plain_get(map, 1);
            benchmark::DoNotOptimize(client);
        }
    });
}
BENCHMARK(BM_Baseline_CoAwaitPlainCoroutineMapLookup);

void BM_Pool_CoAwaitAsyncGetHit(benchmark::State& state) {
    in_coroutine([&](asio::io_context& io) -> asio::awaitable<void> {
        Pool pool(io.get_executor(), make_client);
        co_await pool.async_get(1);  // warm: now cached
        for (auto _ : state) {
            auto client = co_await pool.async_get(1);
            benchmark::DoNotOptimize(client);
        }
        co_await pool.async_shutdown();
    });
}
BENCHMARK(BM_Pool_CoAwaitAsyncGetHit);

void BM_Baseline_MutexMapFind(benchmark::State& state) {
    keyedpool::bench::MutexMap map;
    map.put(1, std::make_shared<Client>());
    for (auto _ : state) {
        auto client = map.find(1);
        benchmark::DoNotOptimize(client);
    }
}
BENCHMARK(BM_Baseline_MutexMapFind);

void BM_Pool_TryGetHit(benchmark::State& state) {
    in_coroutine([&](asio::io_context& io) -> asio::awaitable<void> {
        Pool pool(io.get_executor(), make_client);
        co_await pool.async_get(1);
        for (auto _ : state) {
            auto client = pool.try_get(1);
            benchmark::DoNotOptimize(client);
        }
        co_await pool.async_shutdown();
    });
}
BENCHMARK(BM_Pool_TryGetHit);

// ---- two threads: a pool on a 2-thread thread_pool, gets from both benchmark threads -----------

/// A pool with keys 0..999 cached, and the same clients in a plain map, shared by the threads.
struct Shared {
    asio::thread_pool threads{2};
    Pool pool{threads.get_executor(), make_client};
    keyedpool::bench::MutexMap mutex_map;
    std::unordered_map<int, ClientPtr> plain_map;

    Shared() {
        for (int k = 0; k < 1000; ++k) {
            auto client = pool.async_get(k, asio::use_future).get();
            mutex_map.put(k, client);
            plain_map.emplace(k, client);
        }
    }
};

Shared& shared() {
    static Shared instance;
    return instance;
}

/// The key a thread asks for on its i-th get: one hot key, or 1,000 keys spread.
int key_for(const benchmark::State& state, int i) {
    return state.range(0) == 1 ? 1 : (i * 7 + static_cast<int>(state.thread_index()) * 500) % 1000;
}

void BM_Baseline_MutexMapFind_2Threads(benchmark::State& state) {
    auto& s = shared();
    int i = 0;
    for (auto _ : state) {
        auto client = s.mutex_map.find(key_for(state, i++));
        benchmark::DoNotOptimize(client);
    }
}
BENCHMARK(BM_Baseline_MutexMapFind_2Threads)->Arg(1)->Arg(1000)->Threads(2);

void BM_Pool_TryGetHit_2Threads(benchmark::State& state) {
    auto& s = shared();
    int i = 0;
    for (auto _ : state) {
        auto client = s.pool.try_get(key_for(state, i++));
        benchmark::DoNotOptimize(client);
    }
}
BENCHMARK(BM_Pool_TryGetHit_2Threads)->Arg(1)->Arg(1000)->Threads(2);

void BM_Baseline_CoAwaitPlainCoroutine_2Threads(benchmark::State& state) {
    auto& s = shared();
    in_coroutine([&](asio::io_context&) -> asio::awaitable<void> {
        int i = 0;
        for (auto _ : state) {
            auto client = co_await keyedpool::bench::plain_get(s.plain_map, key_for(state, i++));
            benchmark::DoNotOptimize(client);
        }
    });
}
BENCHMARK(BM_Baseline_CoAwaitPlainCoroutine_2Threads)->Arg(1)->Arg(1000)->Threads(2);

void BM_Pool_CoAwaitAsyncGetHit_2Threads(benchmark::State& state) {
    auto& s = shared();
    in_coroutine([&](asio::io_context&) -> asio::awaitable<void> {
        int i = 0;
        for (auto _ : state) {
            auto client = co_await s.pool.async_get(key_for(state, i++));
            benchmark::DoNotOptimize(client);
        }
    });
}
BENCHMARK(BM_Pool_CoAwaitAsyncGetHit_2Threads)->Arg(1)->Arg(1000)->Threads(2);

}  // namespace
