// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Liveness and deadlines of RedisLockService under the faults a hostile user found: a lock server
// whose clock runs fast (a free lock must still go to a live waiter), a server that stalls (a
// `wait` is a deadline, a connection being built included), and transient failures (a refused or
// reset connection is retried inside the wait, not returned at once). Each test failed on the
// code before the acquisition became a state machine (41f0803).
#include "awaiting.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/redis/lock_service.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::RedisLockService;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

redis::RedisLockServiceOptions on(const redis::ConnectionConfig& config) {
    redis::RedisLockServiceOptions options;
    options.connection = config;
    return options;
}

LockOptions waiting(clock::duration wait, clock::duration lease = 10s) {
    LockOptions options;
    options.wait = wait;
    options.lease = lease;
    return options;
}

/// An acquisition started in the background: its outcome, and when it came.
struct Outcome {
    std::optional<error_code> ec;
    clock::time_point at{};
};

void start_lock(LockService& locks, const std::string& resource, LockOptions options,
                Outcome& outcome, bool release_at_once) {
    locks.async_lock(resource, options, [&outcome, release_at_once](error_code ec, LockGuard g) {
        outcome.ec = ec;
        outcome.at = clock::now();
        if (!ec && release_at_once) {
            g.async_release(asio::detached);
        }
    });
}

// The lock server's clock runs 4x fast: a waiter's queue place (3 x recheck_interval = 3 s by the
// server's clock) lasts 0.75 s of the waiters' time, shorter than their re-check (1 s). B queues at
// 0, C half a re-check later; the holder's lease runs out on the server at 1.8 s with nobody
// releasing (and the holder's remaining lease, read as our milliseconds, never brings a re-try in
// early). Before, each waiter's try dropped its own expired place with the expired ones and queued
// it behind the other, whose place was live: B and C swapped places until their waits ended, the
// lock free the whole time. Now a caller that tries is alive (its place is renewed first) and a
// free lock headed by a live waiter is handed to it: both get the lock at B's next try.
TEST(LockLiveness, AFreeLockGoesToALiveWaiterWhenTheServerClockRunsFast) {
    QuietLogger quiet;
    RedisServer server = fast_clock_redis_server(4);
    asio::io_context io;
    RedisLockService a(io.get_executor(), on(server.config()));
    RedisLockService b(io.get_executor(), on(server.config()));
    RedisLockService c(io.get_executor(), on(server.config()));
    run_coroutine(
        io,
        [&]() -> asio::awaitable<void> {
            // 7.2 s of lease by the server's clock: 1.8 s of ours. Left to run out.
            auto held = co_await a.async_try_lock("fast-clock", 7200ms);
            EXPECT_TRUE(held.owns_lock());
            held.detach();
            const auto start = clock::now();
            Outcome first, second;
            start_lock(b, "fast-clock", waiting(6s), first, true);
            co_await sleep_for(500ms);
            start_lock(c, "fast-clock", waiting(6s), second, true);
            EXPECT_TRUE(co_await eventually([&] { return first.ec && second.ec; }, 15s));
            if (!first.ec || !second.ec) {
                co_return;
            }
            EXPECT_EQ(*first.ec, error_code{}) << first.ec->message();
            EXPECT_EQ(*second.ec, error_code{}) << second.ec->message();
            // Within a few re-checks of the lease's end, far from the waits' end (6 s).
            EXPECT_LT(first.at - start, 3500ms);
            EXPECT_LT(second.at - start, 4000ms);
        },
        30s);
}

// A wait is a deadline even while the server answers nothing: the connection the service builds
// on first use (its connect_timeout is 10 s here) and the acquire script are both bounded by it.
// Before, the build of the internal connection ran to its own timeout first.
TEST(LockLiveness, AWaitEndsByItsDeadlineWhileTheServerIsStopped) {
    QuietLogger quiet;
    RedisServer server;
    asio::io_context io;
    auto options = on(server.config());
    options.connection.connect_timeout = 10s;
    options.request_timeout = 10s;
    RedisLockService fresh(io.get_executor(), options);  // no connection yet
    RedisLockService warm(io.get_executor(), options);   // its connection made before the stop
    server.pause();
    run_coroutine(
        io,
        [&]() -> asio::awaitable<void> {
            for (RedisLockService* locks : {&fresh, &warm}) {
                if (locks == &warm) {
                    server.resume();
                    auto first = co_await warm.async_try_lock("warm-up", 10s);
                    EXPECT_TRUE(first.owns_lock());
                    co_await first.async_release();
                    server.pause();
                }
                const auto start = clock::now();
                auto [ec, guard] = co_await locks->async_lock("stalled", waiting(500ms),
                                                              asio::as_tuple(asio::use_awaitable));
                const auto took = clock::now() - start;
                EXPECT_EQ(ec, ResultCode::lock_timeout);
                EXPECT_GE(took, 500ms);
                EXPECT_LT(took, 3s) << (locks == &fresh ? "building" : "on") << " a connection";
            }
            server.resume();
        },
        30s);
}

// The service's connection is refused (the server is not running yet) when the lock is asked for:
// the wait retries through connect_failed/backoff until the server comes, and takes the lock.
// Before, the first refused connection ended the wait (connect_failed, 10 s of wait left).
TEST(LockLiveness, ARefusedConnectionIsRetriedUntilTheWaitIsSpent) {
    QuietLogger quiet;
    RedisServer server;
    server.stop();
    asio::io_context io;
    std::optional<RedisLockService> service(std::in_place, io.get_executor(), on(server.config()));
    RedisLockService& locks = *service;
    run_coroutine(
        io,
        [&]() -> asio::awaitable<void> {
            Outcome outcome;
            start_lock(locks, "refused", waiting(10s), outcome, true);
            co_await sleep_for(300ms);
            EXPECT_FALSE(outcome.ec.has_value()) << outcome.ec.value_or(error_code{}).message();
            server.start();
            EXPECT_TRUE(co_await eventually([&] { return outcome.ec.has_value(); }, 15s));
            if (!outcome.ec) {
                co_return;
            }
            EXPECT_EQ(*outcome.ec, error_code{}) << outcome.ec->message();

            // With no server at all, the wait is spent, then it is a lock timeout.
            server.stop();
            const auto start = clock::now();
            LockDiagnostics why;
            auto [ec, guard] = co_await locks.async_lock("refused", waiting(300ms), why,
                                                         asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(ec, ResultCode::lock_timeout);
            EXPECT_GE(clock::now() - start, 300ms);
            // The cause is the connection, not a holder: refused, or the pool's backoff after it.
            EXPECT_TRUE(why.cause == ResultCode::connect_failed || why.cause == ResultCode::backoff)
                << why.cause.message();
            EXPECT_GT(why.attempts, 1);
        },
        30s);
    // The last acquisition's give-back is still retrying against the absent server: the service's
    // shutdown ends it, on the io_context (destroyed unrun, its pending work would be leaked).
    service.reset();
    io.restart();
    io.run_for(5s);
}

// A waiter's connections are reset by the server (CLIENT KILL) three times while it waits: it
// keeps waiting, and gets the lock when the holder releases. Before, the first reset ended the wait
// with an I/O error.
TEST(LockLiveness, ResetConnectionsDoNotEndAWait) {
    QuietLogger quiet;
    RedisServer server;
    asio::io_context io;
    RedisLockService holder(io.get_executor(), on(server.config()));
    RedisLockService waiter(io.get_executor(), on(server.config()));
    run_coroutine(
        io,
        [&]() -> asio::awaitable<void> {
            // A short lease: if the holder's own release is lost to a reset, the lease ends it.
            auto held = co_await holder.async_try_lock("reset", 3s);
            EXPECT_TRUE(held.owns_lock());
            Outcome outcome;
            start_lock(waiter, "reset", waiting(20s), outcome, true);
            const auto admin = server.config();
            // Vectors made outside the co_await: g++ 12 rejects a braced list of literals there.
            const std::vector<std::string> kill_subscribers{"CLIENT", "KILL", "TYPE", "pubsub"};
            const std::vector<std::string> kill_commands{"CLIENT", "KILL", "TYPE", "normal"};
            // Queued on the server: its token is in the queue.
            EXPECT_TRUE(co_await eventually([&] { return waiter.lock_requests_sent() >= 1; }));
            for (int i = 0; i < 3; ++i) {
                co_await sleep_for(100ms);
                co_await one_command(admin, kill_subscribers);
                co_await one_command(admin, kill_commands);
                EXPECT_FALSE(outcome.ec.has_value()) << outcome.ec.value_or(error_code{}).message();
            }
            co_await sleep_for(100ms);
            co_await held.async_release(asio::as_tuple(asio::use_awaitable));
            EXPECT_TRUE(co_await eventually([&] { return outcome.ec.has_value(); }, 40s));
            if (outcome.ec) {
                EXPECT_EQ(*outcome.ec, error_code{}) << outcome.ec->message();
            }
        },
        60s);
}

}  // namespace
}  // namespace keyedpool::test
