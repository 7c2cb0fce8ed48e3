// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Processes writing under a lock through a fenced store (`lock_worker fenced`), and
// what the tests read back: the store's count, the workers' totals, the pauses in the writes.
#ifndef KEYEDPOOL_TESTS_FENCED_WORKERS_HPP
#define KEYEDPOOL_TESTS_FENCED_WORKERS_HPP

#include "lock_worker_process.hpp"
#include "redis_server.hpp"
#include "sentinel_group.hpp"  // blocking_command

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace keyedpool::test {

/// The protected resource: a redis-server outside the lock's deployment whose script accepts, per
/// resource, only tokens above the last it accepted (see lock_worker.cpp).
class FencedStore {
  public:
    std::uint16_t port() const { return server_.port(); }

    /// Writes accepted so far.
    long long count() const {
        const auto value = blocking_command(server_.port(), {"GET", "store:counter"});
        return value.is_nil() ? 0LL : std::stoll(value.text());
    }

    /// Waits (observing the workers, not timing them) until `at_least` writes were accepted, at
    /// most `limit`; the count then.
    long long wait_for_count(long long at_least, std::chrono::seconds limit) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (count() < at_least && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return count();
    }

    /// The longest pause (ms, the store's clock) between accepted writes number `from` .. `to`.
    long long longest_gap(long long from, long long to) const {
        const auto times = blocking_command(server_.port(), {"LRANGE", "store:times", "0", "-1"});
        long long gap = 0;
        for (long long i = std::max(1LL, from);
             i < to && i < static_cast<long long>(times.elements().size()); ++i) {
            gap = std::max(gap, std::stoll(times.elements()[i].text()) -
                                    std::stoll(times.elements()[i - 1].text()));
        }
        return gap;
    }

  private:
    RedisServer server_;
};

/// What the `fenced` workers report when they finish.
struct FencedTotals {
    int accepted = 0;
    int refused = 0;
    int told_lost = 0;
    int unexplained = 0;
    int transient = 0;
    bool all_finished = true;
};

/// Starts `count` fenced workers: each writes `iterations` times under the locks of `resources`
/// (comma-separated) taken through `lock_url`.
inline std::vector<std::unique_ptr<Worker>> start_fenced_workers(int count,
                                                                 const std::string& lock_url,
                                                                 const FencedStore& store,
                                                                 const std::string& resources,
                                                                 int iterations) {
    std::vector<std::unique_ptr<Worker>> workers;
    for (int i = 0; i < count; ++i) {
        workers.push_back(std::make_unique<Worker>(
            std::vector<std::string>{"fenced", lock_url, std::to_string(store.port()), resources,
                                     std::to_string(iterations)}));
    }
    return workers;
}

/// Each worker's final line (waiting at most `limit` for each) and exit status, summed.
inline FencedTotals collect_fenced(std::vector<std::unique_ptr<Worker>>& workers,
                                   std::chrono::seconds limit) {
    FencedTotals totals;
    for (auto& worker : workers) {
        const std::string line = worker->read_line(limit);
        int a = 0, r = 0, t = 0, u = 0, e = 0;
        if (std::sscanf(line.c_str(), "fenced %d %d %d %d %d", &a, &r, &t, &u, &e) != 5) {
            ADD_FAILURE() << "a worker did not finish: '" << line << "'";
            totals.all_finished = false;
            continue;
        }
        EXPECT_EQ(worker->wait(), 0);
        totals.accepted += a;
        totals.refused += r;
        totals.told_lost += t;
        totals.unexplained += u;
        totals.transient += e;
    }
    return totals;
}

/// What every fenced run must show: all `expected` writes accepted and counted once by the store,
/// and no refused write from a holder that was not told lock_lost (a token that went backwards).
inline void expect_exact_and_fenced(const FencedTotals& totals, const FencedStore& store,
                                    int expected) {
    EXPECT_TRUE(totals.all_finished);
    EXPECT_EQ(totals.accepted, expected);
    EXPECT_EQ(store.count(), expected) << "the store's count is not exact";
    EXPECT_EQ(totals.unexplained, 0)
        << "a holder's write was refused without it being told lock_lost";
    EXPECT_EQ(totals.refused, totals.told_lost);
}

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_FENCED_WORKERS_HPP
