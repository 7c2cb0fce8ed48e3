// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. What the Redis benchmarks share: the server scripts/bench.sh started, a fresh
// io_context per measurement, the process's CPU time, and holdings of a contended lock recorded in
// one process or gathered from several.
#ifndef KEYEDPOOL_BENCH_REDIS_BENCH_SUPPORT_HPP
#define KEYEDPOOL_BENCH_REDIS_BENCH_SUPPORT_HPP

#include <keyedpool/redis/connection.hpp>

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::bench {

using clock_type = std::chrono::steady_clock;

/// The port of the redis-server scripts/bench.sh started (KEYEDPOOL_BENCH_REDIS_PORT); 0: none.
inline std::uint16_t redis_port() {
    const char* port = std::getenv("KEYEDPOOL_BENCH_REDIS_PORT");
    return port ? static_cast<std::uint16_t>(std::atoi(port)) : 0;
}

inline redis::ConnectionConfig redis_config() {
    redis::ConnectionConfig c;
    c.host = "127.0.0.1";
    c.port = redis_port();
    return c;
}

/// Marks the benchmark skipped when no server was started; true then.
inline bool skip_without_server(benchmark::State& state) {
    if (redis_port() == 0) {
        state.SkipWithError("KEYEDPOOL_BENCH_REDIS_PORT is not set (scripts/bench.sh sets it)");
        return true;
    }
    return false;
}

/// Runs `body(executor)` (an awaitable) to completion on a fresh single-threaded io_context.
template <typename Body>
void run(Body body) {
    boost::asio::io_context io;
    boost::asio::co_spawn(io, body(io.get_executor()), [](std::exception_ptr e) {
        if (e) {
            std::rethrow_exception(e);
        }
    });
    io.run();
}

/// CPU time (user + system) this process has used, in seconds.
inline double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

inline double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// Now, in seconds on the steady clock (CLOCK_MONOTONIC: the same across processes).
inline double now_s() {
    return std::chrono::duration<double>(clock_type::now().time_since_epoch()).count();
}

/// One holding of a lock: when the holder asked for it, acquired it, and started releasing it.
struct Hold {
    double asked = 0;
    double acquired = 0;
    double released = 0;
};

inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

/// Runs `holds_in_child()` in `processes` forked children at once and gathers every holding they
/// recorded; `ok` is false when a child failed. A child inherits no asio state: each `run` builds
/// its own.
inline std::vector<Hold> holds_of_processes(
    int processes, const std::function<std::vector<Hold>()>& holds_in_child, bool& ok) {
    std::vector<pid_t> children;
    std::vector<std::string> files;
    for (int p = 0; p < processes; ++p) {
        files.push_back(fmt::format("/tmp/keyedpool-bench-holds-{}-{}", ::getpid(), p));
        const pid_t pid = ::fork();
        if (pid == 0) {
            const auto holds = holds_in_child();
            std::ofstream out(files.back());
            for (const auto& h : holds) {
                out << fmt::format("{:.9f} {:.9f} {:.9f}\n", h.asked, h.acquired, h.released);
            }
            out.close();
            std::_Exit(out ? 0 : 1);
        }
        children.push_back(pid);
    }
    ok = true;
    for (pid_t pid : children) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    std::vector<Hold> holds;
    for (const auto& file : files) {
        std::ifstream in(file);
        Hold h;
        while (in >> h.asked >> h.acquired >> h.released) {
            holds.push_back(h);
        }
        std::remove(file.c_str());
    }
    return holds;
}

}  // namespace keyedpool::bench

#endif  // KEYEDPOOL_BENCH_REDIS_BENCH_SUPPORT_HPP
