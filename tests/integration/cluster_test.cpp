// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Redis Cluster, on a real cluster started by the fixture: 3 primaries + 3 replicas on loopback.
#include "quiet_logger.hpp"
#include "redis/slot_map.hpp"
#include "redis_cluster.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/redis/cluster.hpp>
#include <keyedpool/redis/connection.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;

class ClusterTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        cluster_ = new RedisCluster(3, 1);
        std::printf("[ figures  ] cluster of 6 nodes up in %lld ms\n",
                    static_cast<long long>(cluster_->startup().count()));
    }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    static RedisCluster* cluster_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisCluster* ClusterTest::cluster_ = nullptr;

// 10,000 keys of every shape — plain, hash-tagged, empty and unclosed tags, binary — get the slot
// the server computes (CLUSTER KEYSLOT, pipelined on one connection).
TEST_F(ClusterTest, HashSlotAgreesWithTheServerOn10000Keys) {
    std::vector<std::string> keys;
    for (int i = 0; i < 10'000; ++i) {
        switch (i % 5) {
            case 0:
                keys.push_back("key:" + std::to_string(i));
                break;
            case 1:
                keys.push_back("{user:" + std::to_string(i % 97) + "}:" + std::to_string(i));
                break;
            case 2:
                keys.push_back("a{}{b" + std::to_string(i) + "}");
                break;
            case 3:
                keys.push_back("x{" + std::to_string(i));
                break;
            default:
                keys.push_back(std::string("\0\xff", 2) + std::to_string(i) + "\x80");
                break;
        }
    }
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = co_await redis::Connection::async_connect(io_.get_executor(),
                                                           cluster_->nodes().front()->config());
        std::vector<std::uint16_t> ours(keys.size());
        int mismatches = 0;
        std::size_t done = 0;
        asio::steady_timer all(io_, std::chrono::steady_clock::time_point::max());
        for (std::size_t i = 0; i < keys.size(); ++i) {
            ours[i] = redis::hash_slot(keys[i]);
            c->async_exec(redis::command("CLUSTER", "KEYSLOT", keys[i]),
                          [&, i](boost::system::error_code ec, redis::Reply reply) {
                              if (ec || reply.as_integer() != ours[i]) {
                                  if (++mismatches <= 5) {
                                      ADD_FAILURE() << "key #" << i << ": ours " << ours[i]
                                                    << ", the server's " << reply.as_integer()
                                                    << " " << ec.message();
                                  }
                              }
                              if (++done == keys.size()) {
                                  all.cancel();
                              }
                          });
        }
        co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(mismatches, 0);
        c->close();
    });
}

// The map the cluster describes covers every slot with 3 primaries of one replica each, and sends
// every key to the node that serves it: 1,000 SETs on the mapped primary succeed, and the same
// key on another primary is refused with MOVED naming the mapped one.
TEST_F(ClusterTest, TheSlotMapSendsEveryKeyToItsPrimary) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto ex = io_.get_executor();
        const auto& seed = *cluster_->nodes().front();
        auto c = co_await redis::Connection::async_connect(ex, seed.config());
        auto slots = co_await c->async_exec(redis::command("CLUSTER", "SLOTS"));
        redis::detail::SlotMap map;
        EXPECT_FALSE(redis::detail::parse_cluster_slots(slots, {"127.0.0.1", seed.port()}, map));
        EXPECT_TRUE(map.complete());
        EXPECT_EQ(map.primaries.size(), 3u);
        for (const auto& replicas : map.replicas) {
            EXPECT_EQ(replicas.size(), 1u);
        }
        std::vector<std::shared_ptr<redis::Connection>> to;
        for (const auto& primary : map.primaries) {
            redis::ConnectionConfig config;
            config.host = primary.host;
            config.port = primary.port;
            to.push_back(co_await redis::Connection::async_connect(ex, config));
        }
        int moved = 0;
        for (int i = 0; i < 1000; ++i) {
            const std::string key = "route:" + std::to_string(i);
            const auto owner = static_cast<std::size_t>(map.owner[redis::hash_slot(key)]);
            auto [ec, ok] = co_await to[owner]->async_exec(redis::command("SET", key, i),
                                                           asio::as_tuple(asio::use_awaitable));
            EXPECT_FALSE(ec) << key << ": " << ok.text();
            auto [wrong_ec, refused] = co_await to[(owner + 1) % to.size()]->async_exec(
                redis::command("GET", key), asio::as_tuple(asio::use_awaitable));
            if (refused.server_error() == redis::ServerError::moved &&
                refused.text().ends_with(":" + std::to_string(map.primaries[owner].port))) {
                ++moved;
            }
        }
        EXPECT_EQ(moved, 1000) << "a key served by another primary was not redirected to its own";
        for (auto& connection : to) {
            connection->close();
        }
        c->close();
    });
}

}  // namespace
}  // namespace keyedpool::test
