// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Redis Sentinel: finding the primary, following a failover (SENTINEL FAILOVER, and the primary
// killed), on a primary + replica + 3 sentinels started on loopback for each test.
#include "awaiting.hpp"
#include "fenced_workers.hpp"
#include "quiet_logger.hpp"
#include "run_coroutine.hpp"
#include "sentinel_group.hpp"

#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/url.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::Connection;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class SentinelTest : public ::testing::Test {
  protected:
    SentinelGroup group_;
    QuietLogger quiet_;
    asio::io_context io_;
};

TEST_F(SentinelTest, ConnectsToThePrimaryTheSentinelsNameSkippingOnesThatDoNotAnswer) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto config = group_.config();
        // A sentinel that is not there comes first: it is skipped.
        config.sentinel.sentinels.insert(config.sentinel.sentinels.begin(),
                                         redis::Endpoint{"127.0.0.1", free_loopback_port()});
        auto [ec, c] = co_await try_connect(config);
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        EXPECT_EQ(c->endpoint().port, group_.node(0).port());
        co_await c->async_exec(redis::command("SET", "sentinel:k", "v"));
        auto role = co_await c->async_exec(redis::command("ROLE"));
        EXPECT_EQ(role.elements().at(0).text(), "master");
        // The URL form says the same.
        std::string url = "redis-sentinel://";
        for (const auto& s : group_.sentinels()) {
            url += s.host + ":" + std::to_string(s.port) + ",";
        }
        url.back() = '/';
        url += group_.master_name();
        auto [url_ec, by_url] = co_await try_connect(redis::parse_url(url));
        EXPECT_FALSE(url_ec) << url_ec.message();
        if (by_url) {
            EXPECT_EQ(by_url->endpoint().port, group_.node(0).port());
        }
    });
}

TEST_F(SentinelTest, AnUnknownMasterNameOrNoSentinelIsConnectFailed) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto config = group_.config();
        config.sentinel.master_name = "nobody";
        auto [ec, none] = co_await try_connect(config);
        EXPECT_EQ(ec, ResultCode::connect_failed) << ec.message();
        config = group_.config();
        config.sentinel.sentinels = {redis::Endpoint{"127.0.0.1", free_loopback_port()}};
        auto [unreachable, none2] = co_await try_connect(config);
        EXPECT_EQ(unreachable, ResultCode::connect_failed) << unreachable.message();
    });
}

// A failover closes the connections to the old primary (pending commands: io_error, never a
// hang); a new connection finds the new primary, with a larger configuration epoch.
TEST_F(SentinelTest, AFailoverClosesTheConnectionAndTheNextOneReachesTheNewPrimary) {
    std::shared_ptr<Connection> before;
    std::uint64_t epoch_before = 0;
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto [ec, c] = co_await try_connect(group_.config());
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        before = c;
        epoch_before = c->config_epoch();
        co_await c->async_exec(redis::command("SET", "failover:k", "before"));
        co_await c->async_exec(redis::command("WAIT", 1, 2000));
    });
    ASSERT_TRUE(before);
    // A command that blocks on the old primary while the failover happens.
    std::optional<error_code> blocked;
    before->async_exec(redis::command("BLPOP", "failover:never", 0),
                       [&](error_code ec, redis::Reply) { blocked = ec; });
    io_.restart();
    io_.poll();
    const auto started = clock::now();
    const std::uint16_t new_primary = group_.failover();
    EXPECT_EQ(new_primary, group_.node(1).port());
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 500 && (!blocked || before->is_connected()); ++i) {
            co_await sleep_for(10ms);
        }
        if (!blocked) {
            ADD_FAILURE() << "a command pending on the old primary was left hanging";
            co_return;
        }
        EXPECT_EQ(*blocked, ResultCode::io_error) << blocked->message();
        EXPECT_FALSE(before->is_connected());
        auto [ec, after] = co_await try_connect(group_.config());
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        EXPECT_EQ(after->endpoint().port, new_primary);
        EXPECT_GT(after->config_epoch(), epoch_before);
        auto value = co_await after->async_exec(redis::command("GET", "failover:k"));
        EXPECT_EQ(value.text(), "before");
        co_await after->async_exec(redis::command("SET", "failover:k", "after"));
    });
    const auto usable_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count();
    RecordProperty("failover_to_usable_ms", static_cast<int>(usable_ms));
    std::printf("SENTINEL FAILOVER: usable on the new primary after %lld ms\n",
                static_cast<long long>(usable_ms));
}

// A pool of connections through Sentinel replaces the closed one by itself on the next get.
TEST_F(SentinelTest, APoolReconnectsToTheNewPrimaryAfterThePrimaryIsKilled) {
    PoolOptions options;
    options.backoff.initial = 50ms;
    options.backoff.max = 200ms;
    KeyedClientPool<std::string, Connection> pool(
        io_.get_executor(),
        [&](const std::string&) -> asio::awaitable<std::shared_ptr<Connection>> {
            co_return co_await Connection::async_connect(io_.get_executor(), group_.config());
        },
        options);
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = co_await pool.async_get("primary");
        co_await c->async_exec(redis::command("SET", "kill:k", "v"));
        co_await c->async_exec(redis::command("WAIT", 1, 2000));
    });
    const auto started = clock::now();
    group_.node(0).kill();
    const std::uint16_t new_primary = group_.wait_for_agreed_primary();
    EXPECT_EQ(new_primary, group_.node(1).port());
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        for (int attempt = 0; attempt < 200; ++attempt) {
            auto [ec, c] = co_await pool.async_get("primary", asio::as_tuple(asio::use_awaitable));
            if (!ec) {
                auto [set_ec, reply] = co_await c->async_exec(
                    redis::command("SET", "kill:k", "after"), asio::as_tuple(asio::use_awaitable));
                if (!set_ec) {
                    EXPECT_EQ(c->endpoint().port, new_primary);
                    co_return;
                }
                EXPECT_TRUE(is_transient(set_ec)) << set_ec.message();
            } else {
                EXPECT_TRUE(is_transient(ec)) << ec.message();
            }
            co_await sleep_for(20ms);
        }
        ADD_FAILURE() << "the pool never reached the new primary";
    });
    const auto usable_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count();
    std::printf("primary killed: usable on the new primary after %lld ms\n",
                static_cast<long long>(usable_ms));
}

// The hole every peer shares: the fence counter's last increments are lost with a primary that
// dies before its replica got them, so the next holder's token could equal (or be below) one
// already handed out. Lost here on purpose: the replica is frozen while a lock is taken, then the
// primary is killed and the replica promoted. The token after the failover must still be above
// every token before, and the holder whose lock the new primary does not have is told.
TEST_F(SentinelTest, FencingTokensNeverGoBackwardsAcrossAFailoverThatLostTheIncrement) {
    redis::RedisLockServiceOptions options;
    options.connection = group_.config();
    options.request_timeout = 1s;
    redis::RedisLockService service(io_.get_executor(), options);
    const std::string fence_key = "keyedpool:lock:{fenced}:fence";
    std::uint64_t highest_before = 0;
    std::optional<LockGuard> doomed;
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            auto guard = co_await service.async_try_lock("fenced", 2s);
            highest_before = std::max(highest_before, guard.fencing_token());
            co_await guard.async_release();
        }
    });
    // The replica gets nothing from here on: frozen, with its replication link cut on the
    // primary's side (what was already in its socket buffer it still reads when it resumes).
    group_.node(1).pause();
    blocking_command(group_.node(0).port(), {"CLIENT", "KILL", "TYPE", "replica"});
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto guard = co_await service.async_lock(
            "fenced", LockOptions{.wait = 1s, .lease = 2s, .auto_renew = true});
        EXPECT_GT(guard.fencing_token(), highest_before);
        highest_before = std::max(highest_before, guard.fencing_token());
        doomed.emplace(std::move(guard));
    });
    group_.node(0).kill();  // the increment and the lock die with it
    group_.node(1).resume();
    const std::uint16_t new_primary = group_.wait_for_agreed_primary();
    ASSERT_EQ(new_primary, group_.node(1).port());
    const auto counter = blocking_command(new_primary, {"GET", fence_key});
    ASSERT_LT(std::stoull(counter.text()), highest_before)
        << "the test did not lose the increment it meant to lose";
    ASSERT_EQ(blocking_command(new_primary, {"EXISTS", "keyedpool:lock:{fenced}"}).as_integer(), 0);
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        std::uint64_t after = 0;
        for (int attempt = 0; attempt < 100 && after == 0; ++attempt) {
            auto [ec, guard] =
                co_await service.async_lock("fenced", LockOptions{.wait = 500ms, .lease = 2s},
                                            asio::as_tuple(asio::use_awaitable));
            if (!ec) {
                after = guard.fencing_token();
                co_await guard.async_release();
            } else {
                EXPECT_TRUE(is_transient(ec)) << ec.message();
                co_await sleep_for(20ms);
            }
        }
        EXPECT_GT(after, highest_before)
            << "a token handed out after the failover is not above one handed out before";
        // The holder from before is told its lock is gone, within its lease.
        auto [lost_ec] = co_await doomed->async_wait_lost(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(lost_ec) << lost_ec.message();  // success: the loss happened
        EXPECT_TRUE(doomed->lost());
    });
}

// min_replicas_acked: a lock counts only once a replica has it. A frozen replica makes the
// acquisition fail with not_replicated, and the lock taken on the primary is given back.
TEST(ReplicatedLockTest, ALockNoReplicaAcknowledgedIsNotReplicatedAndGivenBack) {
    QuietLogger quiet;
    const std::vector<std::string> replication{"--repl-diskless-sync", "yes",
                                               "--repl-diskless-sync-delay", "0"};
    RedisServer primary(replication);
    auto replica_args = replication;
    replica_args.insert(replica_args.end(),
                        {"--replicaof", "127.0.0.1", std::to_string(primary.port())});
    RedisServer replica(replica_args);
    // Ready once a write made after the replica registered is acknowledged (SET and WAIT on one
    // connection: WAIT waits for that connection's last write). Before the replica registers, a
    // write does not move the replication offset, so WAIT would pass at once; and "state=online"
    // comes before the replica's REPLCONF ACK that starts streaming to it (sent once a second).
    asio::io_context io;
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        auto c = co_await redis::Connection::async_connect(io.get_executor(), primary.config());
        asio::steady_timer pause(io);
        for (int i = 0; i < 500; ++i) {
            auto info = co_await c->async_exec(redis::command("INFO", "replication"));
            if (info.text().find("state=online") != std::string::npos) {
                co_await c->async_exec(redis::command("SET", "keyedpool:test:warm-up", i));
                if ((co_await c->async_exec(redis::command("WAIT", 1, 100))).as_integer() == 1) {
                    break;
                }
            } else {
                pause.expires_after(10ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
        }
        c->close();
    });
    redis::RedisLockServiceOptions options;
    options.connection = primary.config();
    options.min_replicas_acked = 1;
    options.replicas_ack_timeout = 300ms;
    redis::RedisLockService service(io.get_executor(), options);
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        auto guard = co_await service.async_try_lock("durable", 5s);
        EXPECT_TRUE(guard.owns_lock());
        co_await guard.async_release();
    });
    replica.pause();
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        const auto started = clock::now();
        auto [ec, guard] =
            co_await service.async_try_lock("durable", 5s, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::not_replicated) << ec.message();
        EXPECT_FALSE(guard.owns_lock());
        EXPECT_LT(clock::now() - started, 2s) << "not bounded by replicas_ack_timeout";
        // Given back: the lock key goes (the clean-up runs in the background).
        long long exists = 1;
        for (int i = 0; i < 200 && exists != 0; ++i) {
            exists = blocking_command(primary.port(), {"EXISTS", "keyedpool:lock:{durable}"})
                         .as_integer();
            if (exists != 0) {
                co_await sleep_for(10ms);
            }
        }
        EXPECT_EQ(exists, 0) << "a lock no replica acknowledged was left on the primary";
    });
    replica.resume();
    EXPECT_THROW(
        {
            auto bad = options;
            bad.min_replicas_acked = -1;
            redis::RedisLockService invalid(io.get_executor(), bad);
        },
        std::invalid_argument);
}

// Three processes take one lock through Sentinel and write under it through a fenced store (a
// separate redis-server whose script refuses a token not above the last it accepted), while the
// primary fails over twice: by SENTINEL FAILOVER, then by SIGKILL. Every process reaches its 200
// accepted writes; every refused write came from a holder that was told lock_lost (with tokens
// that went backwards, a holder that still has its lock would be refused: "unexplained"); the
// store's count is exact. The time until writes resume after each failover is reported.
TEST_F(SentinelTest, ThreeProcessesKeepExactFencedCountsThroughTwoFailovers) {
    FencedStore store;  // the protected resource, outside the failing-over group
    std::string url = "redis-sentinel://";
    for (const auto& sentinel : group_.sentinels()) {
        url += sentinel.host + ":" + std::to_string(sentinel.port) + ",";
    }
    url.back() = '/';
    url += group_.master_name();
    constexpr int iterations = 200;
    auto workers = start_fenced_workers(3, url, store, "shared", iterations);
    ASSERT_GE(store.wait_for_count(100, 30s), 100) << "the workers made no progress";
    const std::uint16_t second = group_.failover();
    const long long at_forced = store.count();
    ASSERT_GE(store.wait_for_count(at_forced + 100, 30s), at_forced + 100);
    const long long at_kill = store.count();
    group_.node(second == group_.node(0).port() ? 0 : 1).kill();
    group_.wait_for_agreed_primary();
    const FencedTotals totals = collect_fenced(workers, 60s);
    expect_exact_and_fenced(totals, store, 3 * iterations);
    // How long writes stopped: the longest gap between accepted writes around each failover
    // (the store's clock).
    const long long forced_gap = store.longest_gap(at_forced - 100, at_kill);
    const long long kill_gap = store.longest_gap(at_kill - 10, 3 * iterations);
    RecordProperty("writes_stopped_ms_forced_failover", static_cast<int>(forced_gap));
    RecordProperty("writes_stopped_ms_killed_primary", static_cast<int>(kill_gap));
    std::printf(
        "3 x %d fenced writes through 2 failovers: writes stopped for %lld ms around "
        "SENTINEL FAILOVER and %lld ms after SIGKILL of the primary; %d refused (all told "
        "lock_lost), %d transient errors retried\n",
        iterations, forced_gap, kill_gap, totals.refused, totals.transient);
}

}  // namespace
}  // namespace keyedpool::test
