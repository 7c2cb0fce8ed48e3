// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// RedisLockService across OS processes and through server failures, on a real redis-server.
#include "child_process.hpp"
#include "lease/core/lock_state.hpp"  // detail::random_token
#include "lock_worker_process.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/logging.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/retry.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class RedisProcessTest : public ::testing::Test {
  protected:
    redis::RedisLockServiceOptions options() const {
        redis::RedisLockServiceOptions o;
        o.connection = server_.config();
        return o;
    }

    template <typename Body>
    void run(Body body) {
        run_coroutine(io_, std::move(body));
    }

    QuietLogger quiet_;
    RedisServer server_;
    asio::io_context io_;
};

// Lock scripts the server ran (EVALSHA + EVAL), from INFO commandstats.
asio::awaitable<long long> scripts_run(redis::Connection& c) {
    auto info = co_await c.async_exec(redis::command("INFO", "commandstats"));
    long long total = 0;
    for (const char* name : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="}) {
        if (auto pos = info.text().find(name); pos != std::string::npos) {
            total += std::stoll(info.text().substr(pos + std::string(name).size()));
        }
    }
    co_return total;
}

// 4 processes x 500 increments of a plain GET/SET counter under the lock: the count is exact and
// the recorded critical sections never overlap.
TEST_F(RedisProcessTest, FourProcessesIncrementACounterExactly) {
    constexpr int processes = 4;
    constexpr int iterations = 500;
    const std::string resource = "counter";
    long long scripts_before = 0;
    run([&]() -> asio::awaitable<void> {
        auto c = co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        scripts_before = co_await scripts_run(*c);
        c->close();
    });
    std::vector<std::string> files;
    std::vector<std::unique_ptr<Worker>> workers;
    for (int p = 0; p < processes; ++p) {
        files.push_back(::testing::TempDir() + "keyedpool-intervals-" + std::to_string(::getpid()) +
                        "-" + std::to_string(p));
        workers.push_back(std::make_unique<Worker>(
            std::vector<std::string>{"counter", std::to_string(server_.port()), resource,
                                     std::to_string(iterations), files.back()}));
    }
    for (auto& w : workers) {
        EXPECT_EQ(w->wait(), 0);
    }
    std::vector<std::pair<long long, long long>> intervals;
    for (auto& f : files) {
        std::ifstream in(f);
        long long start = 0, end = 0;
        while (in >> start >> end) {
            intervals.emplace_back(start, end);
        }
        std::remove(f.c_str());
    }
    ASSERT_EQ(intervals.size(), static_cast<std::size_t>(processes * iterations));
    std::sort(intervals.begin(), intervals.end());
    for (std::size_t i = 1; i < intervals.size(); ++i) {
        ASSERT_GE(intervals[i].first, intervals[i - 1].second)
            << "critical sections overlap at " << i;
    }
    run([&]() -> asio::awaitable<void> {
        auto c = co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        auto count = co_await c->async_exec(redis::command("GET", resource + ":counter"));
        EXPECT_EQ(count.text(), std::to_string(processes * iterations));
        // The local queue keeps all but one coroutine per process off Redis, and a release wakes
        // only the process whose token heads the Redis queue: no stampede, no polling, however
        // many coroutines wait.
        const double per_acquisition =
            static_cast<double>(co_await scripts_run(*c) - scripts_before) /
            (processes * iterations);
        std::printf("[ figures  ] 4 processes contending: %.2f lock requests per acquisition\n",
                    per_acquisition);
        // One failed try (which queues) and the release, which hands the lock to the next in line:
        // the woken waiter owns it without another request (3 requests before the hand-over).
        EXPECT_LE(per_acquisition, 2.1);
        c->close();
    });
}

// A holder killed with SIGKILL never releases: the resource frees when its lease ends.
TEST_F(RedisProcessTest, KilledHolderFreesTheResourceWhenItsLeaseEnds) {
    Worker holder({"hold", std::to_string(server_.port()), "killed", "400", "0"});
    const std::string line = holder.read_line();
    ASSERT_EQ(line.rfind("acquired ", 0), 0u) << line;
    const auto acquired_at = clock::now();
    holder.signal(SIGKILL);
    holder.wait();
    run([&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        auto [busy, none] =
            co_await locks.async_try_lock("killed", 10s, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(busy, ResultCode::lock_busy);
        LockOptions o;
        o.wait = 10s;
        o.lease = 10s;
        auto guard = co_await locks.async_lock("killed", o);
        const auto waited = clock::now() - acquired_at;
        EXPECT_GE(waited, 300ms) << "taken before the dead holder's lease ended";
        EXPECT_LT(waited, 5s);
        co_await guard.async_release();
    });
}

// A holder paused (SIGSTOP) past its lease loses the lock to a new holder; when it resumes it is
// told, it cannot release or extend the new holder's lock, and its fencing token is lower.
TEST_F(RedisProcessTest, PausedHolderLosesTheLockAndCannotTouchTheNewOne) {
    Worker holder({"hold", std::to_string(server_.port()), "paused", "300", "1"});
    const std::string line = holder.read_line();
    ASSERT_EQ(line.rfind("acquired ", 0), 0u) << line;
    const std::uint64_t stale_fence = std::stoull(line.substr(9));
    holder.signal(SIGSTOP);
    run([&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        LockOptions o;
        o.wait = 10s;
        o.lease = 30s;
        auto guard = co_await locks.async_lock("paused", o);  // after the paused holder's lease
        EXPECT_GT(guard.fencing_token(), stale_fence);
        holder.signal(SIGCONT);
        EXPECT_EQ(holder.read_line(), "lost");
        EXPECT_EQ(holder.read_line(), "release lock_lost");
        EXPECT_EQ(holder.wait(), 0);
        // Our lock survived the stale holder's renewal and release attempts.
        EXPECT_TRUE(guard.owns_lock());
        auto [busy, none] =
            co_await locks.async_try_lock("paused", 10s, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(busy, ResultCode::lock_busy);
        auto c = co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        auto ttl = co_await c->async_exec(redis::command("PTTL", "keyedpool:lock:{paused}"));
        EXPECT_GT(ttl.as_integer(), 20'000) << "someone shortened our lease";
        c->close();
        auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(release_ec);
    });
}

// The server stops while a lock is held and comes back: typed errors, no hang, and the service
// recovers (retry drives it through the backoff).
TEST_F(RedisProcessTest, ServerRestartMidHoldGivesTypedErrorsAndRecovers) {
    run([&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        LockOptions o;
        o.lease = 5s;
        auto guard = co_await locks.async_lock("restart", o);
        server_.stop();
        const auto start = clock::now();
        auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_TRUE(release_ec);
        EXPECT_TRUE(is_transient(release_ec)) << release_ec.message();
        auto [try_ec, none] =
            co_await locks.async_try_lock("restart", 1s, asio::as_tuple(asio::use_awaitable));
        EXPECT_TRUE(try_ec);
        EXPECT_TRUE(is_transient(try_ec)) << try_ec.message();
        EXPECT_LT(clock::now() - start, 10s);
        server_.start();  // no persistence: the lock is gone with the old process
        RetryPolicy policy;
        policy.max_attempts = 50;
        policy.deadline = 10s;
        LockGuard again;
        auto ec = co_await retry(policy, [&]() -> asio::awaitable<error_code> {
            auto [e, g] =
                co_await locks.async_try_lock("restart", 5s, asio::as_tuple(asio::use_awaitable));
            again = std::move(g);
            co_return e;
        });
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(again.owns_lock());
        co_await again.async_release();
    });
}

TEST_F(RedisProcessTest, UncontendedAcquireAndReleaseTakeTwoRequests) {
    run([&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        auto stats =
            co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        auto warm = co_await locks.async_try_lock("uncontended", 5s);  // loads the scripts
        co_await warm.async_release();
        const auto before = co_await scripts_run(*stats);
        for (int i = 0; i < 100; ++i) {
            auto guard = co_await locks.async_try_lock("uncontended", 5s);
            co_await guard.async_release();
        }
        EXPECT_EQ(co_await scripts_run(*stats) - before, 200);
        stats->close();
    });
}

// 16 contenders in one process, and 4 processes x 4: waiting is woken by pub/sub, not by polling,
// so the lock requests per acquisition stay small however many wait.
TEST_F(RedisProcessTest, ContendedAcquisitionsTakeAtMostThreeRequestsEach) {
    run([&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        auto stats =
            co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        const auto before = co_await scripts_run(*stats);
        constexpr int contenders = 16;
        constexpr int rounds = 10;
        int finished = 0;
        for (int i = 0; i < contenders; ++i) {
            asio::co_spawn(
                io_,
                [&]() -> asio::awaitable<void> {
                    LockOptions o;
                    o.wait = 30s;
                    o.lease = 5s;
                    for (int r = 0; r < rounds; ++r) {
                        auto guard = co_await locks.async_lock("contended", o);
                        asio::steady_timer hold(io_, 2ms);
                        co_await hold.async_wait(asio::use_awaitable);
                        co_await guard.async_release();
                    }
                    ++finished;
                },
                asio::detached);
        }
        while (finished < contenders) {
            asio::steady_timer t(io_, 10ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        const double per_acquisition =
            static_cast<double>(co_await scripts_run(*stats) - before) / (contenders * rounds);
        std::printf("[ figures  ] 16 contenders, 1 process: %.2f lock requests per acquisition\n",
                    per_acquisition);
        // Each release finds the next caller queued here and leaves it the lock: one `pass` per
        // acquisition (release + acquire would be 2), plus the first acquire and the last release.
        EXPECT_LE(per_acquisition, 1.2);
        stats->close();
    });
}

// Separate services stand for separate processes (each has its own local queue, so they contend
// in Redis). When the lock is released, it goes to the process that has waited longest, and the
// releaser, though it asks again at once and needs no pub/sub hop, takes its turn behind them.
TEST_F(RedisProcessTest, ReleaseHandsOverFirstComeFirstServedAcrossProcesses) {
    run([&]() -> asio::awaitable<void> {
        auto ex = io_.get_executor();
        redis::RedisLockService holder(ex, options()), first(ex, options()), second(ex, options());
        LockOptions wait{.wait = 10s, .lease = 10s};
        auto held = co_await holder.async_lock("fifo", wait);
        std::vector<std::string> order;
        int done = 0;
        auto contend = [&](redis::RedisLockService& service,
                           std::string name) -> asio::awaitable<void> {
            auto guard = co_await service.async_lock("fifo", wait);
            order.push_back(name);
            asio::steady_timer hold(co_await asio::this_coro::executor, 20ms);
            co_await hold.async_wait(asio::use_awaitable);
            co_await guard.async_release();
            ++done;
        };
        asio::co_spawn(ex, contend(first, "first"), asio::detached);
        asio::steady_timer gap(ex, 50ms);  // first is queued in Redis before second
        co_await gap.async_wait(asio::use_awaitable);
        asio::co_spawn(ex, contend(second, "second"), asio::detached);
        gap.expires_after(50ms);
        co_await gap.async_wait(asio::use_awaitable);
        co_await held.async_release();
        co_await contend(holder, "releaser");
        while (done < 3) {
            gap.expires_after(5ms);
            co_await gap.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(order, (std::vector<std::string>{"first", "second", "releaser"}));
    });
}

// A waiter that gives up leaves the Redis queue at once, so it does not stand in the way of the
// next contender until its place expires.
TEST_F(RedisProcessTest, AWaiterThatGivesUpLeavesTheQueue) {
    run([&]() -> asio::awaitable<void> {
        auto ex = io_.get_executor();
        redis::RedisLockService holder(ex, options()), quitter(ex, options()), later(ex, options());
        auto held = co_await holder.async_lock("quit", LockOptions{.wait = 1s, .lease = 10s});
        auto [ec, none] = co_await quitter.async_lock(
            "quit", LockOptions{.wait = 100ms, .lease = 10s}, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::lock_timeout);
        co_await held.async_release();
        // The quitter's place (kept >= 1 s otherwise) must be gone: a try-lock now succeeds.
        asio::steady_timer settle(ex, 20ms);  // the leave is sent in the background
        co_await settle.async_wait(asio::use_awaitable);
        auto [try_ec, guard] =
            co_await later.async_try_lock("quit", 10s, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(try_ec) << try_ec.message();
        if (!try_ec) {
            co_await guard.async_release();
        }
    });
}

// A prefork server takes locks, then forks workers: each process must draw its own tokens (a token
// is the proof of ownership; two processes drawing the same one would own one lock together).
TEST(LockTokens, AForkedChildDoesNotRepeatItsParentsTokens) {
    (void)detail::random_token();  // the parent's generator is seeded before the fork
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        std::string tokens;
        for (int i = 0; i < 4; ++i) {
            tokens += detail::random_token();
        }
        const bool written =
            ::write(fds[1], tokens.data(), tokens.size()) == static_cast<ssize_t>(tokens.size());
        std::_Exit(written ? 0 : 1);
    }
    ::close(fds[1]);
    std::string child(4 * 32, '\0');
    std::size_t got = 0;
    while (got < child.size()) {
        const ssize_t n = ::read(fds[0], child.data() + got, child.size() - got);
        if (n <= 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_EQ(got, child.size());
    for (int i = 0; i < 4; ++i) {
        const std::string mine = detail::random_token();
        EXPECT_EQ(child.find(mine), std::string::npos) << "the child repeated token " << mine;
    }
}

TEST(RedisUnreachable, FailsWithConnectFailedOrTimeoutWithinTheConfiguredTime) {
    QuietLogger quiet;
    asio::io_context io;
    redis::RedisLockServiceOptions options;
    options.connection.port = free_loopback_port();  // nobody listens
    options.connection.connect_timeout = 500ms;
    redis::RedisLockService locks(io.get_executor(), options);
    std::optional<error_code> result;
    const auto start = clock::now();
    locks.async_try_lock("nowhere", 1s, [&](error_code ec, LockGuard) { result = ec; });
    while (!result && io.run_one_for(10s)) {
    }
    ASSERT_TRUE(result);
    EXPECT_TRUE(*result == ResultCode::connect_failed || *result == ResultCode::timeout)
        << result->message();
    EXPECT_LT(clock::now() - start, 2s);
}

}  // namespace
}  // namespace keyedpool::test
