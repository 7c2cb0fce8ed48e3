// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Both lock backends on a 2-thread thread_pool (run under ThreadSanitizer in CI): contenders on
// both threads increment a plain counter under the lock; the count is exact. The same on a Redis
// Cluster, and the cluster client itself shared by coroutines on both threads.
#include "quiet_logger.hpp"
#include "redis_cluster.hpp"
#include "redis_server.hpp"

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/with_lock.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <future>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void contend(LockService& locks, asio::thread_pool& threads) {
    long counter = 0;  // deliberately not atomic: the lock protects it
    std::atomic<int> finished{0};
    std::promise<void> all_done;
    constexpr int workers = 6;
    constexpr int rounds = 25;
    for (int w = 0; w < workers; ++w) {
        asio::co_spawn(
            threads,
            [&]() -> asio::awaitable<void> {
                LockOptions options;
                options.wait = 30s;
                options.lease = 10s;
                options.auto_renew = true;
                for (int i = 0; i < rounds; ++i) {
                    co_await with_lock(locks, "threads:counter", options,
                                       [&]() -> asio::awaitable<void> {
                                           const long seen = counter;
                                           co_await asio::post(co_await asio::this_coro::executor,
                                                               asio::use_awaitable);
                                           counter = seen + 1;
                                       });
                }
                if (finished.fetch_add(1) + 1 == workers) {
                    all_done.set_value();
                }
            },
            [](std::exception_ptr e) {
                if (e) {
                    std::rethrow_exception(e);
                }
            });
    }
    ASSERT_EQ(all_done.get_future().wait_for(60s), std::future_status::ready);
    EXPECT_EQ(counter, workers * rounds);
}

class ThreadedLocks : public ::testing::Test {
  protected:
    QuietLogger quiet_;
};

TEST_F(ThreadedLocks, LocalLockServiceOnTwoThreads) {
    asio::thread_pool threads(2);
    {
        LocalLockService locks(threads.get_executor());
        contend(locks, threads);
    }
    threads.join();
}

TEST_F(ThreadedLocks, RedisLockServiceOnTwoThreads) {
    RedisServer server;
    asio::thread_pool threads(2);
    {
        redis::RedisLockServiceOptions options;
        options.connection = server.config();
        redis::RedisLockService locks(threads.get_executor(), options);
        contend(locks, threads);
    }
    threads.join();
}

TEST_F(ThreadedLocks, RedisLockServiceOnAClusterOnTwoThreads) {
    RedisCluster cluster(3, 0);
    asio::thread_pool threads(2);
    {
        redis::RedisLockServiceOptions options;
        options.cluster = cluster.config();
        redis::RedisLockService locks(threads.get_executor(), options);
        contend(locks, threads);
    }
    threads.join();
}

// Eight coroutines on two threads share one ClusterClient: 200 INCRs each over keys of every
// shard, while map reloads are asked for concurrently; every increment lands exactly once and
// each primary gets one connection.
TEST_F(ThreadedLocks, ClusterClientSharedAcrossTwoThreads) {
    RedisCluster cluster(3, 0);
    asio::thread_pool threads(2);
    {
        std::promise<std::shared_ptr<redis::ClusterClient>> connected;
        redis::ClusterClient::async_connect(
            threads.get_executor(), cluster.config(),
            [&](boost::system::error_code ec, std::shared_ptr<redis::ClusterClient> client) {
                EXPECT_FALSE(ec) << ec.message();
                connected.set_value(client);
            });
        auto client = connected.get_future().get();
        ASSERT_TRUE(client);
        constexpr int workers = 8;
        constexpr int rounds = 200;
        std::atomic<int> finished{0};
        std::atomic<int> failures{0};
        std::promise<void> all_done;
        for (int w = 0; w < workers; ++w) {
            asio::co_spawn(
                asio::make_strand(threads),
                [&, w]() -> asio::awaitable<void> {
                    for (int i = 0; i < rounds; ++i) {
                        auto [ec, reply] = co_await client->async_exec(
                            redis::command("INCR", "threads:" + std::to_string(i % 16)),
                            asio::as_tuple(asio::use_awaitable));
                        failures += ec ? 1 : 0;
                        if (i % 50 == w) {
                            co_await client->async_refresh(client->map_generation(),
                                                           asio::as_tuple(asio::use_awaitable));
                        }
                    }
                    if (finished.fetch_add(1) + 1 == workers) {
                        all_done.set_value();
                    }
                },
                asio::detached);
        }
        ASSERT_EQ(all_done.get_future().wait_for(60s), std::future_status::ready);
        EXPECT_EQ(failures.load(), 0);
        long long total = 0;
        for (int k = 0; k < 16; ++k) {
            std::promise<long long> value;
            client->async_exec(redis::command("GET", "threads:" + std::to_string(k)),
                               [&](boost::system::error_code, redis::Reply reply) {
                                   value.set_value(std::stoll(reply.text()));
                               });
            total += value.get_future().get();
        }
        EXPECT_EQ(total, workers * rounds);
        EXPECT_EQ(client->stats().connections.builds, 3u) << "one connection per primary";
        client->close();
    }
    threads.join();
}

}  // namespace
}  // namespace keyedpool::test
