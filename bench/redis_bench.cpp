// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The Redis lock on a local redis-server (port in KEYEDPOOL_BENCH_REDIS_PORT; started
// by scripts/bench.sh), each figure beside a baseline measured in the same run:
//   pairs      uncontended async_try_lock + async_release per second on one connection, against
//              SET round trips per second through the same Connection (and, in the write-up,
//              `redis-benchmark -t set -c 1 -P 1` run by the script against the same server);
//   pipelined  pairs per second over one connection with many resources locked at once;
//   contended  16 coroutines on one resource, in 1 process and in 4 processes x 4: hand-off
//              latency (previous holder starts releasing -> next holder has the lock) p50/p99
//              against one SET round trip, lock scripts run per acquisition (server side, from
//              INFO commandstats), and the worst wait against the first-come-first-served ideal.
//   semaphore  uncontended async_try_acquire + async_release pairs per second against the lock's
//              pairs measured alternately in the same benchmark; permits granted per second with
//              16 coroutines and limit 4 against the lock (limit 1) under the same load; requests
//              per acquisition.
#include "redis_bench_support.hpp"

#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/semaphore_service.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

using namespace keyedpool::bench;

keyedpool::redis::RedisLockServiceOptions lock_options() {
    keyedpool::redis::RedisLockServiceOptions o;
    o.connection = redis_config();
    return o;
}

asio::awaitable<long long> scripts_run(keyedpool::redis::Connection& c) {
    auto info = co_await c.async_exec(keyedpool::redis::command("INFO", "commandstats"));
    long long total = 0;
    for (const char* name : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="}) {
        if (auto pos = info.text().find(name); pos != std::string::npos) {
            total += std::stoll(info.text().substr(pos + std::string(name).size()));
        }
    }
    co_return total;
}

constexpr int pairs_per_run = 2000;

void BM_Baseline_RedisSetRoundTrips(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    double rate = 0;
    for (auto _ : state) {
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto c = co_await keyedpool::redis::Connection::async_connect(ex, redis_config());
            const auto start = clock_type::now();
            for (int i = 0; i < pairs_per_run; ++i) {
                co_await c->async_exec(keyedpool::redis::command("SET", "bench:set", "v"));
            }
            rate += pairs_per_run / seconds_since(start);
            c->close();
        });
    }
    state.counters["set_per_s"] = rate / state.iterations();
}
BENCHMARK(BM_Baseline_RedisSetRoundTrips)->Iterations(3)->Unit(benchmark::kMillisecond);

void BM_Redis_UncontendedPairs(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    double rate = 0;
    double scripts_per_pair = 0;
    double cpu_per_pair = 0;
    for (auto _ : state) {
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            keyedpool::redis::RedisLockService locks(ex, lock_options());
            auto stats = co_await keyedpool::redis::Connection::async_connect(ex, redis_config());
            auto warm = co_await locks.async_try_lock("bench:uncontended", 10s);
            co_await warm.async_release();
            const auto before = co_await scripts_run(*stats);
            const auto start = clock_type::now();
            const double cpu_start = cpu_seconds();
            for (int i = 0; i < pairs_per_run; ++i) {
                auto guard = co_await locks.async_try_lock("bench:uncontended", 10s);
                co_await guard.async_release();
            }
            cpu_per_pair += (cpu_seconds() - cpu_start) / pairs_per_run;
            rate += pairs_per_run / seconds_since(start);
            scripts_per_pair +=
                static_cast<double>(co_await scripts_run(*stats) - before) / pairs_per_run;
            stats->close();
        });
    }
    state.counters["pairs_per_s"] = rate / state.iterations();
    state.counters["requests_per_pair"] = scripts_per_pair / state.iterations();
    // The client's own CPU (the server is another process); scripts/bench.sh sets it beside
    // redis-benchmark's CPU per SET, and counts this benchmark's system calls under strace.
    state.counters["cpu_us_per_pair"] = 1e6 * cpu_per_pair / state.iterations();
    state.counters["pairs"] = static_cast<double>(pairs_per_run) * state.iterations();
}
BENCHMARK(BM_Redis_UncontendedPairs)->Iterations(3)->Unit(benchmark::kMillisecond);

/// The transports side by side (scripts/bench.sh serves all three from one redis-server): plain
/// TCP, a unix socket (KEYEDPOOL_BENCH_REDIS_UNIX), TLS (KEYEDPOOL_BENCH_REDIS_TLS_PORT, verified
/// against KEYEDPOOL_BENCH_REDIS_TLS_CA). Uncontended try_lock + release pairs per second.
void BM_Redis_TransportPairs(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    auto config = redis_config();
    const char* unix_path = std::getenv("KEYEDPOOL_BENCH_REDIS_UNIX");
    const char* tls_port = std::getenv("KEYEDPOOL_BENCH_REDIS_TLS_PORT");
    const char* tls_ca = std::getenv("KEYEDPOOL_BENCH_REDIS_TLS_CA");
    switch (state.range(0)) {
        case 0:
            state.SetLabel("tcp");
            break;
        case 1:
            if (unix_path == nullptr) {
                state.SkipWithError("KEYEDPOOL_BENCH_REDIS_UNIX is not set");
                return;
            }
            config.unix_socket = unix_path;
            state.SetLabel("unix");
            break;
        default:
            if (tls_port == nullptr || tls_ca == nullptr) {
                state.SkipWithError("KEYEDPOOL_BENCH_REDIS_TLS_PORT/_CA are not set");
                return;
            }
            config.port = static_cast<std::uint16_t>(std::atoi(tls_port));
            config.tls.enabled = true;
            config.tls.ca_file = tls_ca;
            state.SetLabel("tls");
            break;
    }
    double rate = 0;
    for (auto _ : state) {
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto options = lock_options();
            options.connection = config;
            keyedpool::redis::RedisLockService locks(ex, options);
            auto warm = co_await locks.async_try_lock("bench:transport", 10s);
            co_await warm.async_release();
            const auto start = clock_type::now();
            for (int i = 0; i < pairs_per_run; ++i) {
                auto guard = co_await locks.async_try_lock("bench:transport", 10s);
                co_await guard.async_release();
            }
            rate += pairs_per_run / seconds_since(start);
        });
    }
    state.counters["pairs_per_s"] = rate / state.iterations();
}
BENCHMARK(BM_Redis_TransportPairs)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

/// `resources` coroutines at once, each taking and releasing the lock of its own resource
/// (`prefix` + its number) `per_resource` times; pairs per second over the whole.
asio::awaitable<double> pairs_on_resources(keyedpool::LockService& locks, std::string prefix,
                                           int resources, int per_resource) {
    auto ex = co_await asio::this_coro::executor;
    int finished = 0;
    const auto start = clock_type::now();
    asio::steady_timer all_done(ex, clock_type::time_point::max());
    for (int r = 0; r < resources; ++r) {
        asio::co_spawn(
            ex,
            [&, name = prefix + std::to_string(r)]() -> asio::awaitable<void> {
                for (int i = 0; i < per_resource; ++i) {
                    auto guard = co_await locks.async_try_lock(name, 10s);
                    co_await guard.async_release();
                }
                if (++finished == resources) {
                    all_done.cancel();
                }
            },
            asio::detached);
    }
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return resources* per_resource / seconds_since(start);
}

void BM_Redis_PipelinedResources(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    const int resources = static_cast<int>(state.range(0));
    double rate = 0;
    for (auto _ : state) {
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            keyedpool::redis::RedisLockService locks(ex, lock_options());
            auto warm = co_await locks.async_try_lock("bench:warm", 10s);
            co_await warm.async_release();
            const int per_resource = std::max(1, 20'000 / resources);
            rate += co_await pairs_on_resources(locks, "bench:pipelined:", resources, per_resource);
        });
    }
    state.counters["pairs_per_s"] = rate / state.iterations();
}
BENCHMARK(BM_Redis_PipelinedResources)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

/// `contenders` coroutines each take the lock `rounds` times on one resource (holding it for
/// `hold`, then pausing `gap` before asking again), recording every holding.
std::vector<Hold> contend(int contenders, int rounds, clock_type::duration hold,
                          clock_type::duration gap = {}) {
    std::vector<Hold> holds;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        keyedpool::redis::RedisLockService locks(ex, lock_options());
        int finished = 0;
        asio::steady_timer all_done(ex, clock_type::time_point::max());
        for (int c = 0; c < contenders; ++c) {
            asio::co_spawn(
                ex,
                [&]() -> asio::awaitable<void> {
                    asio::steady_timer timer(co_await asio::this_coro::executor);
                    for (int i = 0; i < rounds; ++i) {
                        Hold h;
                        h.asked = now_s();
                        auto guard = co_await locks.async_lock(
                            "bench:contended", keyedpool::LockOptions{.wait = 60s, .lease = 10s});
                        h.acquired = now_s();
                        timer.expires_after(hold);
                        co_await timer.async_wait(asio::use_awaitable);
                        h.released = now_s();
                        co_await guard.async_release();
                        holds.push_back(h);
                        if (gap > clock_type::duration::zero()) {
                            timer.expires_after(gap);
                            co_await timer.async_wait(asio::use_awaitable);
                        }
                    }
                    if (++finished == contenders) {
                        all_done.cancel();
                    }
                },
                asio::detached);
        }
        co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    });
    return holds;
}

/// Hand-off figures from every holding (from one or many processes), in acquisition order.
void report_holds(benchmark::State& state, std::vector<Hold> holds, int contenders,
                  long long scripts) {
    std::sort(holds.begin(), holds.end(),
              [](const Hold& a, const Hold& b) { return a.acquired < b.acquired; });
    std::vector<double> handoff_ms;
    std::vector<double> wait_ms;
    double cycle = 0;
    for (std::size_t i = 1; i < holds.size(); ++i) {
        handoff_ms.push_back((holds[i].acquired - holds[i - 1].released) * 1e3);
        cycle += holds[i].acquired - holds[i - 1].acquired;
    }
    for (const auto& h : holds) {
        wait_ms.push_back((h.acquired - h.asked) * 1e3);
    }
    cycle /= std::max<std::size_t>(1, holds.size() - 1);
    // First come, first served: a waiter waits for every other contender once.
    const double ideal_wait_ms = (contenders - 1) * cycle * 1e3;
    const double worst_wait_ms = *std::max_element(wait_ms.begin(), wait_ms.end());
    state.counters["handoff_p50_ms"] = percentile(handoff_ms, 0.5);
    state.counters["handoff_p99_ms"] = percentile(handoff_ms, 0.99);
    state.counters["requests_per_acquisition"] =
        static_cast<double>(scripts) / static_cast<double>(holds.size());
    state.counters["worst_wait_ms"] = worst_wait_ms;
    state.counters["fcfs_ideal_wait_ms"] = ideal_wait_ms;
    state.counters["worst_wait_vs_fcfs"] = worst_wait_ms / ideal_wait_ms;
    state.counters["acquisitions"] = static_cast<double>(holds.size());
}

long long scripts_now() {
    long long n = 0;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = co_await keyedpool::redis::Connection::async_connect(ex, redis_config());
        n = co_await scripts_run(*c);
        c->close();
    });
    return n;
}

constexpr auto hold_time = 1ms;

void BM_Redis_Contended_OneProcess(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    for (auto _ : state) {
        const auto before = scripts_now();
        auto holds = contend(16, 25, hold_time);
        report_holds(state, std::move(holds), 16, scripts_now() - before);
    }
}
BENCHMARK(BM_Redis_Contended_OneProcess)->Iterations(1)->Unit(benchmark::kMillisecond);

// The same with 2 ms between a holder's release and its next request: the lock changes hands to a
// waiter that has been asleep, not to one that just arrived.
void BM_Redis_Contended_OneProcessWithGap(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    for (auto _ : state) {
        const auto before = scripts_now();
        auto holds = contend(16, 25, hold_time, 2ms);
        report_holds(state, std::move(holds), 16, scripts_now() - before);
    }
}
BENCHMARK(BM_Redis_Contended_OneProcessWithGap)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_Redis_Contended_FourProcesses(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    constexpr int processes = 4;
    for (auto _ : state) {
        const auto before = scripts_now();
        bool ok = false;
        auto holds = holds_of_processes(
            processes, [] { return contend(4, 25, hold_time); }, ok);
        if (!ok || holds.size() != processes * 4 * 25) {
            state.SkipWithError("a contending process failed");
            return;
        }
        report_holds(state, std::move(holds), processes * 4, scripts_now() - before);
    }
}
BENCHMARK(BM_Redis_Contended_FourProcesses)->Iterations(1)->Unit(benchmark::kMillisecond);

// ---- semaphores -------------------------------------------------------------------------------

keyedpool::SemaphoreOptions permits_of(std::size_t limit) {
    keyedpool::SemaphoreOptions o;
    o.limit = limit;
    o.permits = 1;
    o.wait = 60s;
    o.lease = 10s;
    return o;
}

keyedpool::redis::RedisSemaphoreServiceOptions semaphore_options() {
    keyedpool::redis::RedisSemaphoreServiceOptions o;
    o.connection = redis_config();
    return o;
}

/// Uncontended pairs: a semaphore's try_acquire + release against a lock's try_lock + release,
/// in alternating rounds of `pairs_per_run / 4` so both see the same machine.
void BM_Redis_SemaphorePairs(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    double permit_s = 0, lock_s = 0;
    long long scripts = 0;
    for (auto _ : state) {
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            keyedpool::redis::RedisSemaphoreService semaphores(ex, semaphore_options());
            keyedpool::redis::RedisLockService locks(ex, lock_options());
            auto stats = co_await keyedpool::redis::Connection::async_connect(ex, redis_config());
            auto warm = co_await semaphores.async_try_acquire("bench:permits", permits_of(4));
            co_await warm.async_release();
            auto warm_lock = co_await locks.async_try_lock("bench:uncontended", 10s);
            co_await warm_lock.async_release();
            for (int round = 0; round < 4; ++round) {
                const auto before = co_await scripts_run(*stats);
                auto start = clock_type::now();
                for (int i = 0; i < pairs_per_run / 4; ++i) {
                    auto permit =
                        co_await semaphores.async_try_acquire("bench:permits", permits_of(4));
                    co_await permit.async_release();
                }
                permit_s += seconds_since(start);
                scripts += co_await scripts_run(*stats) - before;
                start = clock_type::now();
                for (int i = 0; i < pairs_per_run / 4; ++i) {
                    auto guard = co_await locks.async_try_lock("bench:uncontended", 10s);
                    co_await guard.async_release();
                }
                lock_s += seconds_since(start);
            }
            stats->close();
        });
    }
    const double pairs = static_cast<double>(pairs_per_run) * state.iterations();
    state.counters["permit_pairs_per_s"] = pairs / permit_s;
    state.counters["lock_pairs_per_s"] = pairs / lock_s;
    state.counters["permit_vs_lock"] = lock_s / permit_s;
    // Each pair's scripts minus the INFO of the next round (not a script): acquire + release.
    state.counters["requests_per_pair"] = static_cast<double>(scripts) / pairs;
}
BENCHMARK(BM_Redis_SemaphorePairs)->Iterations(1)->Unit(benchmark::kMillisecond);

/// 16 coroutines of one process take a permit (limit `limit`) or the lock (`limit` 0) 25 times
/// each, holding it 1 ms: grants per second and requests per grant.
std::pair<double, double> permits_under_contention(std::size_t limit) {
    constexpr int contenders = 16, rounds = 25;
    const auto before = scripts_now();
    const auto start = clock_type::now();
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        keyedpool::redis::RedisSemaphoreService semaphores(ex, semaphore_options());
        keyedpool::redis::RedisLockService locks(ex, lock_options());
        int finished = 0;
        asio::steady_timer all_done(ex, clock_type::time_point::max());
        for (int c = 0; c < contenders; ++c) {
            asio::co_spawn(
                ex,
                [&]() -> asio::awaitable<void> {
                    asio::steady_timer hold(co_await asio::this_coro::executor);
                    for (int i = 0; i < rounds; ++i) {
                        if (limit == 0) {
                            auto guard = co_await locks.async_lock(
                                "bench:contended-lock",
                                keyedpool::LockOptions{.wait = 60s, .lease = 10s});
                            hold.expires_after(hold_time);
                            co_await hold.async_wait(asio::use_awaitable);
                            co_await guard.async_release();
                        } else {
                            auto permit = co_await semaphores.async_acquire("bench:contended",
                                                                            permits_of(limit));
                            hold.expires_after(hold_time);
                            co_await hold.async_wait(asio::use_awaitable);
                            co_await permit.async_release();
                        }
                    }
                    if (++finished == contenders) {
                        all_done.cancel();
                    }
                },
                asio::detached);
        }
        co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    });
    const double grants = contenders * rounds;
    return {grants / seconds_since(start), static_cast<double>(scripts_now() - before) / grants};
}

void BM_Redis_SemaphoreContended(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    for (auto _ : state) {
        const auto [permits_per_s, permit_requests] = permits_under_contention(4);
        const auto [locks_per_s, lock_requests] = permits_under_contention(0);
        state.counters["permits_per_s"] = permits_per_s;
        state.counters["requests_per_permit"] = permit_requests;
        state.counters["locks_per_s"] = locks_per_s;
        state.counters["requests_per_lock"] = lock_requests;
        state.counters["permits_vs_lock"] = permits_per_s / locks_per_s;
    }
}
BENCHMARK(BM_Redis_SemaphoreContended)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

// ---- Redis Cluster beside a single node --------------------------------------------------------

/// The same lock work on a single node (KEYEDPOOL_BENCH_REDIS_PORT) and on a cluster of 3
/// primaries (KEYEDPOOL_BENCH_REDIS_CLUSTER_URL), in alternating rounds of one run: `range(0)`
/// coroutines each taking and releasing the lock of its own resource (1: uncontended pairs one
/// after another; 16: sixteen resources at once, pipelined on the connections — spread over the
/// shards on the cluster).
void BM_Redis_ClusterVsSingleNode(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    const char* cluster_url = std::getenv("KEYEDPOOL_BENCH_REDIS_CLUSTER_URL");
    if (cluster_url == nullptr || *cluster_url == '\0') {
        state.SkipWithError(
            "KEYEDPOOL_BENCH_REDIS_CLUSTER_URL is not set (scripts/bench.sh sets it)");
        return;
    }
    const int resources = static_cast<int>(state.range(0));
    const int per_resource = std::max(1, 4000 / resources);
    double single_cpu = 0;
    double cluster_cpu = 0;
    auto round = [&](bool on_cluster) {
        double rate = 0;
        run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
            auto options = lock_options();
            if (on_cluster) {
                options.cluster = keyedpool::redis::parse_cluster_url(cluster_url);
            }
            keyedpool::redis::RedisLockService locks(ex, options);
            for (int r = 0; r < resources; ++r) {  // connections and scripts warm on every shard
                auto warm =
                    co_await locks.async_try_lock("bench:cluster:" + std::to_string(r), 10s);
                co_await warm.async_release();
            }
            const double cpu_before = cpu_seconds();
            rate = co_await pairs_on_resources(locks, "bench:cluster:", resources, per_resource);
            (on_cluster ? cluster_cpu : single_cpu) +=
                (cpu_seconds() - cpu_before) / (resources * per_resource);
        });
        return rate;
    };
    double single = 0;
    double cluster = 0;
    for (auto _ : state) {
        single += round(false);
        cluster += round(true);
    }
    state.SetLabel(resources == 1 ? "uncontended" : std::to_string(resources) + "-way pipelined");
    state.counters["single_node_pairs_per_s"] = single / state.iterations();
    state.counters["cluster_pairs_per_s"] = cluster / state.iterations();
    state.counters["cluster_vs_single"] = cluster / single;
    // The client's own CPU per pair (the servers are other processes).
    state.counters["single_node_cpu_us_per_pair"] = 1e6 * single_cpu / state.iterations();
    state.counters["cluster_cpu_us_per_pair"] = 1e6 * cluster_cpu / state.iterations();
}
BENCHMARK(BM_Redis_ClusterVsSingleNode)
    ->Arg(1)
    ->Arg(16)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
