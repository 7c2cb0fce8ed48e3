// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// RedisLockService on a real Redis Cluster (3 primaries + 3 replicas on loopback): where its keys
// and subscriptions live, fencing tokens across a failover, and three processes writing through a
// fenced store on resources spread over every shard while one shard fails over by CLUSTER
// FAILOVER and another loses its primary to SIGKILL. (The lock and semaphore contract suites also
// run whole on a cluster: lock_contract_test, semaphore_redis_contract_test.)
#include "fenced_workers.hpp"
#include "quiet_logger.hpp"
#include "redis_cluster.hpp"
#include "run_coroutine.hpp"
#include "sentinel_group.hpp"  // blocking_command

#include <keyedpool/redis/cluster.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// The primary serving `slot`, and its replica, as the cluster describes itself.
struct Shard {
    std::uint16_t primary = 0;
    std::uint16_t replica = 0;
};
Shard shard_of(const RedisCluster& cluster, std::uint16_t slot) {
    for (const auto& node : cluster.nodes()) {
        if (!node->running()) {
            continue;
        }
        const auto slots = blocking_command(node->port(), {"CLUSTER", "SLOTS"});
        for (const auto& range : slots.elements()) {
            const auto& e = range.elements();
            if (e[0].as_integer() <= slot && slot <= e[1].as_integer()) {
                Shard shard;
                shard.primary = static_cast<std::uint16_t>(e[2].elements()[1].as_integer());
                if (e.size() > 3) {
                    shard.replica = static_cast<std::uint16_t>(e[3].elements()[1].as_integer());
                }
                return shard;
            }
        }
        break;
    }
    return {};
}

long long my_epoch(std::uint16_t port) {
    const auto info = blocking_command(port, {"CLUSTER", "INFO"}).text();
    const auto at = info.find("cluster_my_epoch:");
    return std::stoll(info.substr(at + 17));
}

class ClusterLockTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new RedisCluster(3, 1); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    redis::RedisLockServiceOptions options() const {
        redis::RedisLockServiceOptions o;
        o.cluster = cluster_->config();
        o.recheck_interval = 5s;  // a prompt hand-over can only come from sharded pub/sub
        return o;
    }

    static RedisCluster* cluster_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisCluster* ClusterLockTest::cluster_ = nullptr;

// A lock's keys live on the primary serving its hash tag's slot; its waiter subscribes there with
// SSUBSCRIBE (a shard channel of that node only; no classic channel anywhere), and the release
// reaches it at once (the re-check is 5 s away).
TEST_F(ClusterLockTest, KeysAndHandOverChannelLiveOnTheResourcesShard) {
    const std::string resource = "orders-42";
    const auto shard = shard_of(*cluster_, redis::hash_slot(resource));
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), options());
        // Another service, as another process would (waiters of one service queue locally).
        redis::RedisLockService other(io_.get_executor(), options());
        auto holder = co_await locks.async_try_lock(resource, 5s);
        EXPECT_EQ(
            blocking_command(shard.primary, {"EXISTS", "keyedpool:lock:{orders-42}"}).as_integer(),
            1);
        const auto waiting_start = clock::now();
        bool acquired = false;
        LockGuard handed;
        other.async_lock(resource, LockOptions{.wait = 10s, .lease = 2s},
                         [&](error_code ec, LockGuard guard) {
                             acquired = !ec && guard.owns_lock();
                             handed = std::move(guard);
                         });
        // Wait until the waiter's subscription is on the server (observing, not timing it).
        const std::string channel = "keyedpool:lock:{orders-42}:released";
        for (int i = 0; i < 500; ++i) {
            const auto subscribed =
                blocking_command(shard.primary, {"PUBSUB", "SHARDNUMSUB", channel});
            if (subscribed.elements().size() == 2 && subscribed.elements()[1].as_integer() == 1) {
                break;
            }
            asio::steady_timer pause(io_, 10ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        for (const auto& node : cluster_->nodes()) {
            const auto sharded = blocking_command(node->port(), {"PUBSUB", "SHARDCHANNELS"});
            EXPECT_EQ(sharded.elements().size(), node->port() == shard.primary ? 1u : 0u)
                << "port " << node->port();
            EXPECT_TRUE(blocking_command(node->port(), {"PUBSUB", "CHANNELS"}).elements().empty())
                << "a classic (broadcast) channel was subscribed on port " << node->port();
        }
        co_await holder.async_release();
        for (int i = 0; i < 300 && !acquired; ++i) {
            asio::steady_timer pause(io_, 10ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        EXPECT_TRUE(acquired);
        EXPECT_LT(clock::now() - waiting_start, 4s) << "the hand-over message did not arrive";
        if (acquired) {
            co_await handed.async_release();
        }
    });
}

/// The number of subscribers of shard channel `channel` on the node at `port`.
long long shard_subscribers(std::uint16_t port, const std::string& channel) {
    const auto reply = blocking_command(port, {"PUBSUB", "SHARDNUMSUB", channel});
    return reply.elements().size() == 2 ? reply.elements()[1].as_integer() : -1;
}

// A waiter subscribed on its resource's shard when the slot moves to another shard: the server
// drops the sharded subscription, the waiter tries again (following MOVED with the lock's keys)
// and subscribes on the new shard, where the holder's release (also following MOVED) hands the
// lock over at once — all well inside the 5 s re-check, which could not explain it.
TEST_F(ClusterLockTest, AWaitersSubscriptionFollowsItsSlotToAnotherShard) {
    const std::string resource = "moving-1";
    const std::uint16_t slot = redis::hash_slot(resource);
    const std::string channel = "keyedpool:lock:{moving-1}:released";
    const auto from = shard_of(*cluster_, slot).primary;
    std::uint16_t to = 0;
    for (const auto& node : cluster_->nodes()) {
        if (node->running() && node->port() != from && cluster_->is_primary(node->port())) {
            to = node->port();
            break;
        }
    }
    ASSERT_NE(to, 0);
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::RedisLockService holder_service(io_.get_executor(), options());
        redis::RedisLockService waiter_service(io_.get_executor(), options());
        auto holder = co_await holder_service.async_try_lock(resource, 10s);
        bool acquired = false;
        LockGuard handed;
        waiter_service.async_lock(resource, LockOptions{.wait = 15s, .lease = 5s},
                                  [&](error_code ec, LockGuard guard) {
                                      acquired = !ec && guard.owns_lock();
                                      handed = std::move(guard);
                                  });
        auto until = [&](auto condition) -> asio::awaitable<bool> {
            for (int i = 0; i < 300; ++i) {  // observing, at most 3 s
                if (condition()) {
                    co_return true;
                }
                asio::steady_timer pause(io_, 10ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            co_return condition();
        };
        EXPECT_TRUE(co_await until([&] { return shard_subscribers(from, channel) == 1; }));
        const auto moved_at = clock::now();
        cluster_->move_slot(slot, from, to);
        EXPECT_TRUE(co_await until([&] { return shard_subscribers(to, channel) == 1; }))
            << "the waiter did not subscribe where the slot went";
        EXPECT_EQ(shard_subscribers(from, channel), 0) << "the old shard kept the subscription";
        EXPECT_LT(clock::now() - moved_at, 4s) << "only the 5 s re-check noticed the move";
        co_await holder.async_release();
        EXPECT_TRUE(co_await until([&] { return acquired; }));
        EXPECT_LT(clock::now() - moved_at, 4s) << "the hand-over on the new shard was not heard";
        if (acquired) {
            co_await handed.async_release();
        }
    });
}

// min_replicas_acked on a cluster: the WAIT goes to the resource's primary, where the script
// wrote. With its replica streaming the lock counts; with the replica frozen the acquisition fails
// with not_replicated within replicas_ack_timeout and the lock is given back.
TEST_F(ClusterLockTest, MinReplicasAckedWaitsOnTheResourcesShard) {
    const std::string resource = "durable-7";
    const auto shard = shard_of(*cluster_, redis::hash_slot(resource));
    ASSERT_NE(shard.replica, 0);
    auto opts = options();
    opts.min_replicas_acked = 1;
    opts.replicas_ack_timeout = 1s;
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::RedisLockService locks(io_.get_executor(), opts);
        auto [ec, guard] =
            co_await locks.async_try_lock(resource, 5s, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ec) << ec.message();
        if (guard.owns_lock()) {
            co_await guard.async_release();
        }
        RedisServer* replica = nullptr;
        for (const auto& node : cluster_->nodes()) {
            replica = node->port() == shard.replica ? node.get() : replica;
        }
        replica->pause();
        const auto started = clock::now();
        auto [frozen_ec, none] =
            co_await locks.async_try_lock(resource, 5s, asio::as_tuple(asio::use_awaitable));
        const auto took = clock::now() - started;
        replica->resume();
        EXPECT_EQ(frozen_ec, ResultCode::not_replicated) << frozen_ec.message();
        EXPECT_FALSE(none.owns_lock());
        EXPECT_LT(took, 3s) << "not bounded by replicas_ack_timeout";
        long long exists = 1;  // given back in the background
        for (int i = 0; i < 200 && exists != 0; ++i) {
            exists = blocking_command(shard.primary, {"EXISTS", "keyedpool:lock:{durable-7}"})
                         .as_integer();
            asio::steady_timer pause(io_, 10ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(exists, 0) << "the unreplicated lock was not given back";
    });
}

// Fencing tokens on a cluster start above the primary's cluster_my_epoch << 32, and the replica
// promoted by CLUSTER FAILOVER (a higher epoch) hands out tokens above every token before it.
TEST_F(ClusterLockTest, FencingTokensRiseAcrossAClusterFailover) {
    const std::string resource = "fenced-across";
    const auto shard = shard_of(*cluster_, redis::hash_slot(resource));
    run_coroutine(
        io_,
        [&]() -> asio::awaitable<void> {
            redis::RedisLockService locks(io_.get_executor(), options());
            auto first = co_await locks.async_try_lock(resource, 2s);
            const std::uint64_t before = first.fencing_token();
            EXPECT_EQ(static_cast<long long>(before >> 32), my_epoch(shard.primary));
            co_await first.async_release();
            blocking_command(shard.replica, {"CLUSTER", "FAILOVER"});
            for (int i = 0; i < 500 && !cluster_->is_primary(shard.replica); ++i) {
                asio::steady_timer pause(io_, 10ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            EXPECT_TRUE(cluster_->is_primary(shard.replica));
            std::uint64_t after = 0;
            for (int i = 0; i < 200 && after == 0; ++i) {
                auto [ec, guard] = co_await locks.async_try_lock(
                    resource, 2s, asio::as_tuple(asio::use_awaitable));
                if (!ec) {
                    after = guard.fencing_token();
                    co_await guard.async_release();
                } else {
                    asio::steady_timer pause(io_, 20ms);
                    co_await pause.async_wait(asio::use_awaitable);
                }
            }
            EXPECT_GT(after, before);
            EXPECT_EQ(static_cast<long long>(after >> 32), my_epoch(shard.replica))
                << "the promoted primary's epoch is not the floor";
            EXPECT_GT(after >> 32, before >> 32);
        },
        60s);
}

// Three processes × 200 writes through a fenced store (a separate redis-server refusing, per
// resource, a token not above the last it accepted), each lock one of nine resources spread over
// all three shards, while one shard fails over by CLUSTER FAILOVER and another loses its primary
// to SIGKILL. The count is exact, and every refused write came from a holder told lock_lost.
TEST_F(ClusterLockTest, ThreeProcessesKeepExactFencedCountsOverEveryShardThroughTwoFailovers) {
    FencedStore store;
    std::vector<std::string> resources;
    std::set<std::uint16_t> primaries;
    std::string list;
    for (int i = 0; i < 9; ++i) {
        resources.push_back("account-" + std::to_string(i));
        primaries.insert(shard_of(*cluster_, redis::hash_slot(resources.back())).primary);
        list += (i ? "," : "") + resources.back();
    }
    ASSERT_EQ(primaries.size(), 3u) << "the resources do not cover every shard";
    std::string url = "redis-cluster://";
    for (const auto& node : cluster_->nodes()) {
        url += "127.0.0.1:" + std::to_string(node->port()) + ",";
    }
    url.pop_back();
    constexpr int iterations = 200;
    auto workers = start_fenced_workers(3, url, store, list, iterations);
    ASSERT_GE(store.wait_for_count(50, 30s), 50) << "the workers made no progress";
    const auto first = shard_of(*cluster_, redis::hash_slot(resources[0]));
    blocking_command(first.replica, {"CLUSTER", "FAILOVER"});
    const long long at_forced = store.count();
    ASSERT_GE(store.wait_for_count(at_forced + 50, 30s), at_forced + 50);
    // Another shard's primary dies.
    Shard second;
    for (const auto& resource : resources) {
        second = shard_of(*cluster_, redis::hash_slot(resource));
        if (second.primary != first.primary && second.primary != first.replica) {
            break;
        }
    }
    const long long at_kill = store.count();
    EXPECT_LT(at_kill, 3 * iterations - 200) << "the primary died when the work was nearly done";
    for (const auto& node : cluster_->nodes()) {
        if (node->port() == second.primary) {
            node->kill();
        }
    }
    const auto killed_at = clock::now();
    const FencedTotals totals = collect_fenced(workers, 90s);
    const auto after_kill =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - killed_at).count();
    expect_exact_and_fenced(totals, store, 3 * iterations);
    std::printf(
        "[ figures  ] 3 x %d fenced writes over 3 shards: longest pause %lld ms around CLUSTER "
        "FAILOVER, %lld ms after SIGKILL of a primary (the last %lld writes took %lld ms); %d "
        "refused (all told lock_lost), %d transient errors retried\n",
        iterations, store.longest_gap(at_forced - 20, at_kill),
        store.longest_gap(at_kill, 3 * iterations), 3 * iterations - at_kill,
        static_cast<long long>(after_kill), totals.refused, totals.transient);
}

}  // namespace
}  // namespace keyedpool::test
