// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Hit path: a cached, healthy key, against the floors in baselines.hpp (same run, same
// machine).
#include "baselines.hpp"

#include <keyedpool/keyed_client_pool.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio.hpp>

namespace asio = boost::asio;
using keyedpool::bench::Client;
using keyedpool::bench::ClientPtr;

namespace {

using Pool = keyedpool::KeyedClientPool<int, Client>;

asio::awaitable<ClientPtr> make_client(const int& key) {
    co_return std::make_shared<Client>(Client{key});
}

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

}  // namespace

BENCHMARK_MAIN();
