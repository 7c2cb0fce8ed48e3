// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// RedisLockService against a minimal lock, side by side in one run on one redis-server (port in
// KEYEDPOOL_BENCH_REDIS_PORT; started by scripts/bench.sh). The minimal lock is the protocol the
// lock libraries users pick today run (redlock, redis-semaphore): acquire `SET key token NX PX
// lease`, release a compare-and-delete script, and waiters that poll every 10 ms. It runs on our
// own `redis::Connection`, so the comparison is of the protocols, not of the sockets.
//
// The cases of the peers' harness, each run for both locks in alternating rounds:
//   pairs      uncontended try-lock + release pairs per second, beside plain SET round trips on
//              the same connection (a pair is two round trips: 0.5x SET is the floor);
//   1x16       16 lockers in one process on one resource, critical section GET + SET on a counter;
//   4x4        4 processes x 4 lockers;
//   1x16 gap   as 1x16, with 2 ms between a locker's release and its next lock.
// For the contended cases: acquisitions per second, the worst wait against the first-come
// first-served ideal, hand-off p50 (the previous holder's release started -> next holder has it)
// in round trips of a SET, and the exactness of the counter.
#include "redis_bench_support.hpp"

#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using keyedpool::redis::command;
using keyedpool::redis::Connection;

namespace {

using namespace keyedpool::bench;

// ---- the two locks behind one face -----------------------------------------------------------

/// A held lock of either kind; `release` gives it back.
struct Held {
    virtual ~Held() = default;
    virtual asio::awaitable<void> release() = 0;
};

struct Locks {
    virtual ~Locks() = default;
    /// Waits (up to 60 s) for the lock; null when it was not taken.
    virtual asio::awaitable<std::unique_ptr<Held>> lock(const std::string& resource) = 0;
    /// One attempt.
    virtual asio::awaitable<std::unique_ptr<Held>> try_lock(const std::string& resource) = 0;
};

/// The minimal lock: SET NX PX, a compare-and-delete release, polling every 10 ms.
class MinimalLocks final : public Locks {
  public:
    explicit MinimalLocks(std::shared_ptr<Connection> c) : connection_(std::move(c)) {}

    asio::awaitable<std::unique_ptr<Held>> try_lock(const std::string& resource) override {
        const std::string token = next_token();
        auto reply = co_await connection_->async_exec(
            command("SET", "minimal:" + resource, token, "NX", "PX", "10000"));
        if (reply.is_nil()) {
            co_return nullptr;
        }
        co_return std::make_unique<MinimalHeld>(*this, "minimal:" + resource, token);
    }

    asio::awaitable<std::unique_ptr<Held>> lock(const std::string& resource) override {
        asio::steady_timer poll(co_await asio::this_coro::executor);
        const auto give_up = clock_type::now() + 60s;
        while (clock_type::now() < give_up) {
            if (auto held = co_await try_lock(resource)) {
                co_return held;
            }
            poll.expires_after(10ms);
            co_await poll.async_wait(asio::use_awaitable);
        }
        co_return nullptr;
    }

  private:
    struct MinimalHeld final : Held {
        MinimalHeld(MinimalLocks& l, std::string k, std::string t)
            : locks(l), key(std::move(k)), token(std::move(t)) {}
        asio::awaitable<void> release() override { co_await locks.release(key, token); }
        MinimalLocks& locks;
        std::string key;
        std::string token;
    };

    static constexpr const char* compare_and_delete =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0";

    asio::awaitable<void> release(const std::string& key, const std::string& token) {
        if (sha_.empty()) {
            sha_ = (co_await connection_->async_exec(command("SCRIPT", "LOAD", compare_and_delete)))
                       .text();
        }
        co_await connection_->async_exec(command("EVALSHA", sha_, 1, key, token));
    }

    std::string next_token() { return fmt::format("{:016x}{:016x}", random_(), random_()); }

    std::shared_ptr<Connection> connection_;
    std::string sha_;
    std::mt19937_64 random_{std::random_device{}()};
};

/// RedisLockService behind the same face.
class KeyedpoolLocks final : public Locks {
  public:
    explicit KeyedpoolLocks(asio::any_io_executor ex) : service_(ex, options()) {}

    asio::awaitable<std::unique_ptr<Held>> try_lock(const std::string& resource) override {
        auto guard = co_await service_.async_try_lock(resource, 10s);
        co_return guard ? std::make_unique<GuardHeld>(std::move(guard)) : nullptr;
    }

    asio::awaitable<std::unique_ptr<Held>> lock(const std::string& resource) override {
        auto guard = co_await service_.async_lock(resource, {.wait = 60s, .lease = 10s});
        co_return guard ? std::make_unique<GuardHeld>(std::move(guard)) : nullptr;
    }

  private:
    static keyedpool::redis::RedisLockServiceOptions options() {
        keyedpool::redis::RedisLockServiceOptions o;
        o.connection = redis_config();
        o.key_prefix = "bench:keyedpool:";
        return o;
    }
    struct GuardHeld final : Held {
        explicit GuardHeld(keyedpool::LockGuard g) : guard(std::move(g)) {}
        asio::awaitable<void> release() override { co_await guard.async_release(); }
        keyedpool::LockGuard guard;
    };
    keyedpool::redis::RedisLockService service_;
};

enum class Kind { keyedpool = 0, minimal = 1 };
const char* name_of(Kind kind) {
    return kind == Kind::keyedpool ? "keyedpool" : "minimal";
}

/// The locks of `kind` for this io_context (the minimal one on `connection`).
std::unique_ptr<Locks> make_locks(Kind kind, asio::any_io_executor ex,
                                  std::shared_ptr<Connection> connection) {
    if (kind == Kind::keyedpool) {
        return std::make_unique<KeyedpoolLocks>(ex);
    }
    return std::make_unique<MinimalLocks>(std::move(connection));
}

// ---- uncontended pairs -----------------------------------------------------------------------

constexpr int pairs_per_round = 2000;

struct PairFigures {
    double pairs_per_s = 0;
    double cpu_us_per_pair = 0;
};

PairFigures uncontended_round(Kind kind) {
    PairFigures figures;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto connection = co_await Connection::async_connect(ex, redis_config());
        auto locks = make_locks(kind, ex, connection);
        auto warm = co_await locks->try_lock("bench:uncontended");
        co_await warm->release();
        const auto start = clock_type::now();
        const double cpu_start = cpu_seconds();
        for (int i = 0; i < pairs_per_round; ++i) {
            auto held = co_await locks->try_lock("bench:uncontended");
            co_await held->release();
        }
        figures.cpu_us_per_pair = 1e6 * (cpu_seconds() - cpu_start) / pairs_per_round;
        figures.pairs_per_s = pairs_per_round / seconds_since(start);
        locks.reset();
        connection->close();
    });
    return figures;
}

double set_round() {
    double rate = 0;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = co_await Connection::async_connect(ex, redis_config());
        const auto start = clock_type::now();
        for (int i = 0; i < pairs_per_round; ++i) {
            co_await c->async_exec(command("SET", "bench:set", "v"));
        }
        rate = pairs_per_round / seconds_since(start);
        c->close();
    });
    return rate;
}

/// Rounds alternate keyedpool, minimal, SET, so a change in the machine's load weighs on all.
void BM_LockVsMinimal_UncontendedPairs(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    PairFigures ours, minimal;
    double set = 0;
    int rounds = 0;
    for (auto _ : state) {
        for (int r = 0; r < 3; ++r, ++rounds) {
            const auto a = uncontended_round(Kind::keyedpool);
            const auto b = uncontended_round(Kind::minimal);
            set += set_round();
            ours.pairs_per_s += a.pairs_per_s;
            ours.cpu_us_per_pair += a.cpu_us_per_pair;
            minimal.pairs_per_s += b.pairs_per_s;
            minimal.cpu_us_per_pair += b.cpu_us_per_pair;
        }
    }
    state.counters["keyedpool_pairs_per_s"] = ours.pairs_per_s / rounds;
    state.counters["minimal_pairs_per_s"] = minimal.pairs_per_s / rounds;
    state.counters["set_per_s"] = set / rounds;
    state.counters["vs_minimal"] = ours.pairs_per_s / minimal.pairs_per_s;
    state.counters["vs_set"] = ours.pairs_per_s / set;
    state.counters["keyedpool_cpu_us_per_pair"] = ours.cpu_us_per_pair / rounds;
    state.counters["minimal_cpu_us_per_pair"] = minimal.cpu_us_per_pair / rounds;
}
BENCHMARK(BM_LockVsMinimal_UncontendedPairs)->Iterations(1)->Unit(benchmark::kMillisecond);

// ---- contended -------------------------------------------------------------------------------

/// `lockers` coroutines take the lock `rounds` times each; the critical section reads and
/// increments `counter` (GET, then SET: lost updates show when the lock does not exclude).
std::vector<Hold> contend(Kind kind, int lockers, int rounds, clock_type::duration gap,
                          const std::string& resource) {
    std::vector<Hold> holds;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto connection = co_await Connection::async_connect(ex, redis_config());
        auto locks = make_locks(kind, ex, connection);
        // Warm: connections made and scripts loaded before the clock starts.
        if (auto warm = co_await locks->lock(resource + ":warm")) {
            co_await warm->release();
        }
        int finished = 0;
        asio::steady_timer all_done(ex, clock_type::time_point::max());
        const std::string counter = resource + ":counter";
        for (int l = 0; l < lockers; ++l) {
            asio::co_spawn(
                ex,
                [&]() -> asio::awaitable<void> {
                    asio::steady_timer pause(co_await asio::this_coro::executor);
                    for (int i = 0; i < rounds; ++i) {
                        Hold h;
                        h.asked = now_s();
                        auto held = co_await locks->lock(resource);
                        h.acquired = now_s();
                        auto value = co_await connection->async_exec(command("GET", counter));
                        const long long n = value.is_nil() ? 0 : std::stoll(value.text());
                        co_await connection->async_exec(command("SET", counter, n + 1));
                        h.released = now_s();
                        if (held) {
                            co_await held->release();
                            holds.push_back(h);
                        }
                        if (gap > clock_type::duration::zero()) {
                            pause.expires_after(gap);
                            co_await pause.async_wait(asio::use_awaitable);
                        }
                    }
                    if (++finished == lockers) {
                        all_done.cancel();
                    }
                },
                asio::detached);
        }
        co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
        locks.reset();
        connection->close();
    });
    return holds;
}

struct ContendedFigures {
    double acquisitions_per_s = 0;
    double worst_wait_vs_fcfs = 0;
    double handoff_p50_ms = 0;
    long long lost_updates = 0;
};

ContendedFigures figures_of(std::vector<Hold> holds, int contenders, long long counter) {
    ContendedFigures f;
    if (holds.size() < 2) {
        return f;
    }
    std::sort(holds.begin(), holds.end(),
              [](const Hold& a, const Hold& b) { return a.acquired < b.acquired; });
    std::vector<double> handoff_ms;
    std::vector<double> wait_ms;
    for (std::size_t i = 1; i < holds.size(); ++i) {
        handoff_ms.push_back((holds[i].acquired - holds[i - 1].released) * 1e3);
    }
    for (const auto& h : holds) {
        wait_ms.push_back((h.acquired - h.asked) * 1e3);
    }
    const double span = holds.back().acquired - holds.front().acquired;
    const double cycle = span / static_cast<double>(holds.size() - 1);
    f.acquisitions_per_s = static_cast<double>(holds.size() - 1) / span;
    const double ideal_wait_ms = (contenders - 1) * cycle * 1e3;
    f.worst_wait_vs_fcfs = *std::max_element(wait_ms.begin(), wait_ms.end()) / ideal_wait_ms;
    f.handoff_p50_ms = percentile(handoff_ms, 0.5);
    f.lost_updates = static_cast<long long>(holds.size()) - counter;
    return f;
}

long long read_and_clear(const std::string& counter) {
    long long n = 0;
    run([&](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto c = co_await Connection::async_connect(ex, redis_config());
        auto value = co_await c->async_exec(command("GET", counter));
        n = value.is_nil() ? 0 : std::stoll(value.text());
        co_await c->async_exec(command("DEL", counter));
        c->close();
    });
    return n;
}

constexpr int rounds_per_locker = 50;

/// `processes` x `lockers` on one resource (processes > 1: forked children, holds in files).
ContendedFigures contended_round(Kind kind, int processes, int lockers, clock_type::duration gap) {
    const std::string resource = fmt::format("bench:contended:{}", name_of(kind));
    std::vector<Hold> holds;
    if (processes == 1) {
        holds = contend(kind, lockers, rounds_per_locker, gap, resource);
    } else {
        bool ok = false;
        holds = holds_of_processes(
            processes, [&] { return contend(kind, lockers, rounds_per_locker, gap, resource); },
            ok);
        if (!ok) {
            return ContendedFigures{};  // a contending process failed: no figures
        }
    }
    return figures_of(std::move(holds), processes * lockers, read_and_clear(resource + ":counter"));
}

/// Both locks in alternating rounds; args: processes, lockers per process, gap in ms.
void BM_LockVsMinimal_Contended(benchmark::State& state) {
    if (skip_without_server(state)) {
        return;
    }
    const int processes = static_cast<int>(state.range(0));
    const int lockers = static_cast<int>(state.range(1));
    const auto gap = std::chrono::milliseconds(state.range(2));
    ContendedFigures ours, minimal;
    int rounds = 0;
    for (auto _ : state) {
        for (int r = 0; r < 2; ++r, ++rounds) {
            const auto a = contended_round(Kind::keyedpool, processes, lockers, gap);
            const auto b = contended_round(Kind::minimal, processes, lockers, gap);
            ours.acquisitions_per_s += a.acquisitions_per_s;
            ours.worst_wait_vs_fcfs = std::max(ours.worst_wait_vs_fcfs, a.worst_wait_vs_fcfs);
            ours.handoff_p50_ms += a.handoff_p50_ms;
            ours.lost_updates += a.lost_updates;
            minimal.acquisitions_per_s += b.acquisitions_per_s;
            minimal.worst_wait_vs_fcfs = std::max(minimal.worst_wait_vs_fcfs, b.worst_wait_vs_fcfs);
            minimal.handoff_p50_ms += b.handoff_p50_ms;
            minimal.lost_updates += b.lost_updates;
        }
    }
    const double set_ms = 1e3 / set_round();
    state.counters["keyedpool_acq_per_s"] = ours.acquisitions_per_s / rounds;
    state.counters["minimal_acq_per_s"] = minimal.acquisitions_per_s / rounds;
    state.counters["vs_minimal"] = ours.acquisitions_per_s / minimal.acquisitions_per_s;
    state.counters["keyedpool_worst_wait_vs_fcfs"] = ours.worst_wait_vs_fcfs;
    state.counters["minimal_worst_wait_vs_fcfs"] = minimal.worst_wait_vs_fcfs;
    state.counters["keyedpool_handoff_p50_round_trips"] = ours.handoff_p50_ms / rounds / set_ms;
    state.counters["minimal_handoff_p50_round_trips"] = minimal.handoff_p50_ms / rounds / set_ms;
    state.counters["keyedpool_lost_updates"] = static_cast<double>(ours.lost_updates);
    state.counters["minimal_lost_updates"] = static_cast<double>(minimal.lost_updates);
}
BENCHMARK(BM_LockVsMinimal_Contended)
    ->ArgNames({"processes", "lockers", "gap_ms"})
    ->Args({1, 16, 0})
    ->Args({4, 4, 0})
    ->Args({1, 16, 2})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
