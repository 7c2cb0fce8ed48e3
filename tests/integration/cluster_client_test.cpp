// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// redis::ClusterClient on a real cluster (3 primaries + 3 replicas on loopback): routing, one
// connection per node, slots migrated while commands run (ASK, then MOVED), redirect loops, a
// replica promoted with CLUSTER FAILOVER and a primary killed with SIGKILL.
#include "quiet_logger.hpp"
#include "redis_cluster.hpp"
#include "run_coroutine.hpp"
#include "sentinel_group.hpp"  // blocking_command
#include "tls_files.hpp"

#include <keyedpool/redis/cluster_client.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

redis::ClusterConfig config_for(const RedisCluster& cluster) {
    // The URL form, as users write it: one seed is enough.
    auto config = redis::parse_cluster_url("redis-cluster://127.0.0.1:" +
                                           std::to_string(cluster.nodes().front()->port()));
    config.node.connect_timeout = 2s;
    return config;
}

/// The node listening on `port`.
RedisServer& node_on(const RedisCluster& cluster, std::uint16_t port) {
    for (const auto& node : cluster.nodes()) {
        if (node->port() == port) {
            return *node;
        }
    }
    throw std::runtime_error("no node on port " + std::to_string(port));
}

std::string node_id(std::uint16_t port) {
    return blocking_command(port, {"CLUSTER", "MYID"}).text();
}

/// A key of `slot` (the hash tag is found by search: keys of one slot share nothing else).
std::string key_in_slot(std::uint16_t slot, const std::string& name) {
    for (int tag = 0;; ++tag) {
        const std::string candidate = "{t" + std::to_string(tag) + "}";
        if (redis::hash_slot(candidate) == slot) {
            return candidate + name;
        }
    }
}

/// Each call of `exec` on its own, all started before any completes; their results in order.
asio::awaitable<std::vector<std::pair<error_code, redis::Reply>>> exec_all(
    redis::ClusterClient& client, std::vector<std::vector<std::string>> commands) {
    std::vector<std::pair<error_code, redis::Reply>> results(commands.size());
    std::size_t done = 0;
    asio::steady_timer all(co_await asio::this_coro::executor, clock::time_point::max());
    for (std::size_t i = 0; i < commands.size(); ++i) {
        client.async_exec(std::move(commands[i]), [&, i](error_code ec, redis::Reply reply) {
            results[i] = {ec, std::move(reply)};
            if (++done == results.size()) {
                all.cancel();
            }
        });
    }
    if (done < results.size()) {
        co_await all.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return results;
}

class ClusterClientTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new RedisCluster(3, 1); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    asio::awaitable<std::shared_ptr<redis::ClusterClient>> connect(
        redis::ClusterConfig config = config_for(*cluster_)) {
        co_return co_await redis::ClusterClient::async_connect(io_.get_executor(), config);
    }

    static RedisCluster* cluster_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisCluster* ClusterClientTest::cluster_ = nullptr;

// 10,000 SETs through the client (pipelined) land on the primary serving each key: no node
// redirects a single one, each primary's key count grows by exactly the keys the map gives it, and
// every tenth key reads back from its primary directly. Over one connection per primary.
TEST_F(ClusterClientTest, RoutesEachCommandToItsSlotsPrimary) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto client = co_await connect();
        EXPECT_EQ(client->stats().primaries, 3u);
        std::map<std::uint16_t, std::shared_ptr<redis::Connection>> direct;
        std::map<std::uint16_t, long long> size_before;
        for (const auto& node : cluster_->nodes()) {
            if (cluster_->is_primary(node->port())) {
                direct[node->port()] =
                    co_await redis::Connection::async_connect(io_.get_executor(), node->config());
                size_before[node->port()] =
                    (co_await direct[node->port()]->async_exec(redis::command("DBSIZE")))
                        .as_integer();
            }
        }
        // One read per primary first: its connection is made before the 10,000 commands queue
        // behind its build (under a sanitizer on a loaded machine, that build ran past its
        // connect_timeout). Reads: the key counts below stay exact.
        std::map<std::uint16_t, std::string> warm_key;
        for (int i = 0; warm_key.size() < direct.size() && i < 100'000; ++i) {
            const std::string key = "warm:" + std::to_string(i);
            warm_key.emplace(client->primary_for(redis::hash_slot(key))->port, key);
        }
        for (const auto& [port, key] : warm_key) {
            co_await client->async_exec(redis::command("EXISTS", key));
        }
        constexpr int keys = 10'000;
        std::vector<std::vector<std::string>> sets;
        std::map<std::uint16_t, long long> routed_to;
        for (int i = 0; i < keys; ++i) {
            const std::string key = "routed:" + std::to_string(i);
            sets.push_back(redis::command("SET", key, i));
            ++routed_to[client->primary_for(redis::hash_slot(key))->port];
        }
        const auto results = co_await exec_all(*client, sets);
        int failed = 0;
        for (const auto& [ec, reply] : results) {
            failed += ec ? 1 : 0;
        }
        EXPECT_EQ(failed, 0);
        long long total = 0;
        for (auto& [port, c] : direct) {
            const auto grew =
                (co_await c->async_exec(redis::command("DBSIZE"))).as_integer() - size_before[port];
            EXPECT_EQ(grew, routed_to[port]) << "port " << port;
            total += grew;
        }
        EXPECT_EQ(total, keys);
        int found = 0;
        for (int i = 0; i < keys; i += 10) {
            const std::string key = "routed:" + std::to_string(i);
            auto value =
                co_await direct[client->primary_for(redis::hash_slot(key))->port]->async_exec(
                    redis::command("GET", key));
            found += value.text() == std::to_string(i);
        }
        EXPECT_EQ(found, keys / 10);
        const auto stats = client->stats();
        EXPECT_EQ(stats.moved, 0u) << "a node redirected a command: routed to the wrong one";
        EXPECT_EQ(stats.asked, 0u);
        EXPECT_EQ(stats.connections.builds, 3u) << "one connection per primary";
        auto [ping_ec, pong] = co_await client->async_exec(redis::command("PING"),
                                                           asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ping_ec);
        EXPECT_EQ(pong.text(), "PONG") << "a keyless command goes to some primary";
        for (auto& [port, c] : direct) {
            c->close();
        }
    });
}

// 600 commands started at once by a client that has no connection yet open exactly one
// connection per primary (the pool's single flight), not one per command.
TEST_F(ClusterClientTest, OpensOneConnectionPerNodeHoweverManyCommandsStartAtOnce) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto config = config_for(*cluster_);
        // A replica as the seed: its connection serves the map only, never a command.
        config.seeds = {{"127.0.0.1", cluster_->nodes().back()->port()}};
        auto client = co_await connect(config);
        std::vector<std::vector<std::string>> gets;
        for (int i = 0; i < 600; ++i) {
            gets.push_back(redis::command("INCR", "burst:" + std::to_string(i % 60)));
        }
        int failed = 0;
        const auto results2 = co_await exec_all(*client, gets);
        for (const auto& [ec, reply] : results2) {
            failed += ec ? 1 : 0;
        }
        EXPECT_EQ(failed, 0);
        const auto stats = client->stats();
        EXPECT_EQ(stats.connections.builds, 4u) << "the seed replica + 3 primaries";
        EXPECT_EQ(stats.connections.build_failures, 0u);
        EXPECT_EQ(stats.connections.live_clients, 4u);
        EXPECT_EQ(stats.map_refreshes, 1u);
    });
}

// Keys in different slots are refused before anything is sent; a hash tag makes them one slot.
TEST_F(ClusterClientTest, RefusesCrossSlotCommandsBeforeSendingThem) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto client = co_await connect();
        const auto before = client->stats().connections.misses;
        auto [ec, reply] = co_await client->async_exec(redis::command("MSET", "a", "1", "b", "2"),
                                                       asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::invalid_argument);
        EXPECT_EQ(client->stats().connections.misses, before) << "something was sent";
        auto [tag_ec, ok] = co_await client->async_exec(
            redis::command("MSET", "{user:1}:a", "1", "{user:1}:b", "2"),
            asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(tag_ec) << ok.text();
        auto [past_ec, late] = co_await client->async_exec_until(
            redis::command("GET", "x"), clock::now() - 1ms, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(past_ec, ResultCode::timeout);
    });
}

// A slot migrated key by key while commands on its keys keep running: during the migration the
// source answers ASK for keys already moved (followed with ASKING, map untouched), and once the
// slot is handed over it answers MOVED (one map reload for 40 commands that saw it at once). Every
// increment counts exactly once.
TEST_F(ClusterClientTest, ASlotMigratedWhileCommandsRunLosesNoIncrement) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto client = co_await connect();
        const std::uint16_t slot = 777;
        const auto from = *client->primary_for(slot);
        std::uint16_t to_port = 0;
        for (const auto& node : cluster_->nodes()) {
            const auto role = blocking_command(node->port(), {"ROLE"});
            if (role.elements().front().text() == "master" && node->port() != from.port) {
                to_port = node->port();
                break;
            }
        }
        if (to_port == 0) {
            ADD_FAILURE() << "no other primary";
            co_return;
        }
        std::vector<std::string> keys;
        for (int k = 0; k < 20; ++k) {
            keys.push_back(key_in_slot(slot, ":counter" + std::to_string(k)));
        }
        std::map<std::string, long long> expected;
        auto increment_all = [&]() -> asio::awaitable<void> {
            std::vector<std::vector<std::string>> incrs;
            for (const auto& key : keys) {
                incrs.push_back(redis::command("INCR", key));
                ++expected[key];
            }
            const auto results3 = co_await exec_all(*client, incrs);
            for (const auto& [ec, reply] : results3) {
                EXPECT_FALSE(ec) << ec.message() << " " << reply.text();
            }
        };
        co_await increment_all();

        // Start the migration: the target imports, the source migrates.
        const auto from_id = node_id(from.port);
        const auto to_id = node_id(to_port);
        blocking_command(to_port,
                         {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", from_id});
        blocking_command(from.port,
                         {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", to_id});
        for (std::size_t moved_keys = 0; moved_keys < keys.size(); moved_keys += 4) {
            for (std::size_t k = moved_keys; k < moved_keys + 4; ++k) {
                blocking_command(from.port, {"MIGRATE", "127.0.0.1", std::to_string(to_port),
                                             keys[k], "0", "5000"});
            }
            co_await increment_all();  // some keys here, some there: ASK for the moved ones
        }
        const auto during = client->stats();
        EXPECT_EQ(during.asked, 4u + 8u + 12u + 16u + 20u) << "each moved key is asked for";
        EXPECT_EQ(during.moved, 0u);
        EXPECT_EQ(during.map_refreshes, 1u) << "an ASK reloaded the map (it must not)";

        // Hand the slot over: the target first, then the source, then everyone else.
        blocking_command(to_port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
        blocking_command(from.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
        for (const auto& node : cluster_->nodes()) {
            const auto role = blocking_command(node->port(), {"ROLE"});
            if (role.elements().front().text() == "master") {
                blocking_command(node->port(),
                                 {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", to_id});
            }
        }
        std::vector<std::vector<std::string>> incrs;
        for (int round = 0; round < 2; ++round) {
            for (const auto& key : keys) {
                incrs.push_back(redis::command("INCR", key));
                ++expected[key];
            }
        }
        const auto results4 = co_await exec_all(*client, incrs);
        for (const auto& [ec, reply] : results4) {
            EXPECT_FALSE(ec) << ec.message() << " " << reply.text();
        }
        const auto after = client->stats();
        EXPECT_EQ(after.moved, 40u) << "each command that went to the old owner follows MOVED";
        EXPECT_EQ(after.map_refreshes, 2u) << "one reload for 40 MOVED at once";
        EXPECT_EQ(client->primary_for(slot)->port, to_port);
        co_await increment_all();
        EXPECT_EQ(client->stats().moved, 40u) << "the new map routes straight to the new owner";

        auto target = co_await redis::Connection::async_connect(
            io_.get_executor(), node_on(*cluster_, to_port).config());
        int exact = 0;
        for (const auto& key : keys) {
            auto value = co_await target->async_exec(redis::command("GET", key));
            exact += value.text() == std::to_string(expected[key]);
        }
        EXPECT_EQ(exact, 20) << "an increment was lost or applied twice";
        std::printf("[ figures  ] migration of slot %u: %llu ASK, %llu MOVED, %llu map loads\n",
                    slot, static_cast<unsigned long long>(after.asked),
                    static_cast<unsigned long long>(after.moved),
                    static_cast<unsigned long long>(after.map_refreshes));
        target->close();
    });
}

// A slot the source says is migrating but the target does not import: the source says ASK, the
// target MOVED back, forever. The command stops after max_redirects with too_many_redirects.
TEST_F(ClusterClientTest, ARedirectLoopEndsWithTooManyRedirects) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto config = config_for(*cluster_);
        config.max_redirects = 3;
        auto client = co_await connect(config);
        const std::uint16_t slot = 9000;
        const auto from = *client->primary_for(slot);
        std::uint16_t other = 0;
        for (const auto& node : cluster_->nodes()) {
            const auto role = blocking_command(node->port(), {"ROLE"});
            if (role.elements().front().text() == "master" && node->port() != from.port) {
                other = node->port();
            }
        }
        blocking_command(from.port,
                         {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", node_id(other)});
        const auto key = key_in_slot(slot, ":absent");
        auto [ec, reply] = co_await client->async_exec(redis::command("GET", key),
                                                       asio::as_tuple(asio::use_awaitable));
        blocking_command(from.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "STABLE"});
        EXPECT_EQ(ec, ResultCode::too_many_redirects) << ec.message() << " " << reply.text();
        EXPECT_TRUE(is_transient(ec));
        const auto stats = client->stats();
        EXPECT_EQ(stats.redirect_limit_hits, 1u);
        EXPECT_EQ(stats.asked + stats.moved, 3u);
        auto [again_ec, nil] = co_await client->async_exec(redis::command("GET", key),
                                                           asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(again_ec) << "the slot is stable again";
    });
}

// ---- bad clusters: unreachable seeds, hostile nodes --------------------------------------------

/// A fake cluster node: for each (marker, reply), waits until the commands received so far
/// contain `marker` (past the previous one), then sends `reply`; then reads until the client
/// leaves. (A coroutine function, not a coroutine lambda: its state must not live in a lambda
/// object that may be a temporary.)
asio::awaitable<void> answer(asio::ip::tcp::socket socket,
                             std::vector<std::pair<std::string, std::string>> exchanges) {
    std::string received;
    std::size_t seen = 0;
    for (const auto& [marker, reply] : exchanges) {
        while (received.find(marker, seen) == std::string::npos) {
            char chunk[512];
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk),
                                                           asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            received.append(chunk, n);
        }
        seen = received.find(marker, seen) + marker.size();
        co_await asio::async_write(socket, asio::buffer(reply),
                                   asio::as_tuple(asio::use_awaitable));
    }
    std::string sink;
    co_await asio::async_read(socket, asio::dynamic_buffer(sink),
                              asio::as_tuple(asio::use_awaitable));
}

FakeServer::Script node_answering(std::vector<std::pair<std::string, std::string>> exchanges) {
    return
        [exchanges](asio::ip::tcp::socket socket) { return answer(std::move(socket), exchanges); };
}

/// A CLUSTER SLOTS reply giving every slot to 127.0.0.1:`port`.
std::string all_slots_on(std::uint16_t port) {
    return "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:" + std::to_string(port) + "\r\n";
}

TEST(ClusterClientBadInput, NoSeedThatAnswersIsConnectFailed) {
    QuietLogger quiet;
    asio::io_context io;
    redis::ClusterConfig config;
    config.seeds = {{"127.0.0.1", free_loopback_port()}, {"127.0.0.1", free_loopback_port()}};
    config.node.connect_timeout = 500ms;
    std::optional<error_code> result;
    redis::ClusterClient::async_connect(
        io.get_executor(), config, [&](error_code ec, std::shared_ptr<redis::ClusterClient> c) {
            result = ec;
            EXPECT_FALSE(c);
        });
    io.run_for(10s);
    ASSERT_TRUE(result) << "connect never completed";
    EXPECT_EQ(*result, ResultCode::connect_failed) << result->message();
}

// Each node tells something that is not a usable map; the client says what, by code, and never
// routes on it.
TEST(ClusterClientBadInput, AHostileOrUselessSlotMapIsATypedError) {
    QuietLogger quiet;
    const std::vector<std::pair<std::string, ResultCode>> cases{
        {"*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$1\r\nh\r\n:0\r\n", ResultCode::protocol_error},
        {"*1\r\n*3\r\n:9\r\n:3\r\n*2\r\n$1\r\nh\r\n:7000\r\n", ResultCode::protocol_error},
        {"+OK\r\n", ResultCode::protocol_error},
        {"*0\r\n", ResultCode::server_busy},  // a node that knows no primary
        {"-ERR This instance has cluster support disabled\r\n", ResultCode::server_error},
    };
    for (const auto& [reply, expected] : cases) {
        asio::io_context io;
        FakeServer node(io, node_answering({{"SLOTS", reply}}));
        redis::ClusterConfig config;
        config.seeds = {{"127.0.0.1", node.port()}};
        std::optional<error_code> result;
        redis::ClusterClient::async_connect(
            io.get_executor(), config, [&](error_code ec, std::shared_ptr<redis::ClusterClient>) {
                result = ec;
                node.stop();
            });
        io.run_for(10s);
        ASSERT_TRUE(result) << "connect never completed";
        EXPECT_EQ(*result, expected) << result->message() << " for " << reply;
    }
}

// A node whose redirect is not one (a slot past 16383) fails the command with protocol_error; one
// that redirects to itself for ever is stopped at max_redirects.
TEST(ClusterClientBadInput, AMalformedOrEndlessRedirectEndsTheCommand) {
    QuietLogger quiet;
    for (const bool endless : {false, true}) {
        asio::io_context io;
        std::uint16_t port = 0;
        std::vector<std::pair<std::string, std::string>> exchanges;
        FakeServer node(
            io, [&](asio::ip::tcp::socket socket) { return answer(std::move(socket), exchanges); });
        port = node.port();
        exchanges.push_back({"SLOTS", all_slots_on(port)});
        const std::string redirect =
            endless ? "-MOVED 866 127.0.0.1:" + std::to_string(port) + "\r\n"
                    : "-MOVED 99999 127.0.0.1:" + std::to_string(port) + "\r\n";
        for (int i = 0; i < 8; ++i) {
            exchanges.push_back({"GET", redirect});
            exchanges.push_back({"SLOTS", all_slots_on(port)});  // the reload after a MOVED
        }
        redis::ClusterConfig config;
        config.seeds = {{"127.0.0.1", port}};
        config.max_redirects = 3;
        std::optional<error_code> result;
        redis::ClusterClient::async_connect(
            io.get_executor(), config,
            [&](error_code ec, std::shared_ptr<redis::ClusterClient> client) {
                if (ec) {
                    result = ec;
                    return;
                }
                client->async_exec(redis::command("GET", "k"),
                                   [&, client](error_code exec_ec, redis::Reply) {
                                       result = exec_ec;
                                       client->close();
                                       node.stop();
                                   });
            });
        io.run_for(10s);
        ASSERT_TRUE(result) << "the command never completed";
        EXPECT_EQ(*result, endless ? ResultCode::too_many_redirects : ResultCode::protocol_error)
            << result->message();
    }
}

// ---- TLS and AUTH, as for a single server ------------------------------------------------------

// A cluster whose nodes require a password and speak TLS (clients, bus, replication): the client
// connects to the TLS ports the map names, verifies each node's certificate, authenticates, routes,
// and follows a MOVED over TLS. A wrong password is auth_failed, an untrusted CA tls_failed.
TEST(ClusterClientSecured, TlsAndAuthAsForASingleServer) {
    QuietLogger quiet;
    TlsFiles tls;
    RedisCluster cluster(3, 0, {.password = "s3cret", .tls = &tls});
    asio::io_context io;
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        auto client =
            co_await redis::ClusterClient::async_connect(io.get_executor(), cluster.config());
        std::vector<std::vector<std::string>> sets;
        for (int i = 0; i < 300; ++i) {
            sets.push_back(redis::command("SET", "secured:" + std::to_string(i), i));
        }
        const auto results = co_await exec_all(*client, sets);
        int failed = 0;
        for (const auto& [ec, reply] : results) {
            failed += ec ? 1 : 0;
        }
        EXPECT_EQ(failed, 0);
        EXPECT_EQ(client->stats().connections.builds, 3u);
        const auto seeds = cluster.config().seeds;
        const auto primary = client->primary_for(redis::hash_slot("secured:1"));
        EXPECT_TRUE(std::find(seeds.begin(), seeds.end(), *primary) != seeds.end())
            << "the map names a port that is not a node's TLS port: " << primary->port;

        // A slot moved behind the client's back: MOVED, over TLS, to the TLS port.
        const std::uint16_t slot = redis::hash_slot("secured:1");
        std::uint16_t from = 0, to = 0;
        for (std::size_t i = 0; i < seeds.size(); ++i) {
            (seeds[i] == *primary ? from : to) = cluster.nodes()[i]->port();
        }
        cluster.move_slot(slot, from, to);
        auto [ec, value] = co_await client->async_exec(redis::command("GET", "secured:1"),
                                                       asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ec) << ec.message() << " " << value.text();
        EXPECT_EQ(value.text(), "1");
        EXPECT_EQ(client->stats().moved, 1u);
        client->close();

        auto wrong = cluster.config();
        wrong.node.password = "guess";
        auto [auth_ec, none] = co_await redis::ClusterClient::async_connect(
            io.get_executor(), wrong, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(auth_ec, ResultCode::auth_failed) << auth_ec.message();
        auto untrusted = cluster.config();
        untrusted.node.tls.ca_file = tls.other_ca();
        auto [tls_ec, none2] = co_await redis::ClusterClient::async_connect(
            io.get_executor(), untrusted, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(tls_ec, ResultCode::tls_failed) << tls_ec.message();
    });
}

// ---- failovers: a cluster of their own ---------------------------------------------------------

class ClusterFailoverTest : public ClusterClientTest {
  protected:
    /// Sends `command` through `client` until it succeeds (each try bounded by 1 s, 20 ms apart),
    /// for at most `limit`; returns how long that took, and counts the failed tries.
    asio::awaitable<std::optional<clock::duration>> until_served(redis::ClusterClient& client,
                                                                 std::vector<std::string> command,
                                                                 clock::duration limit,
                                                                 int& failures) {
        const auto start = clock::now();
        asio::steady_timer pause(io_);
        while (clock::now() - start < limit) {
            auto [ec, reply] = co_await client.async_exec_until(
                command, clock::now() + 1s, asio::as_tuple(asio::use_awaitable));
            if (!ec) {
                co_return clock::now() - start;
            }
            EXPECT_TRUE(is_transient(ec) || ec == asio::error::operation_aborted)
                << ec.message() << " " << reply.text();
            ++failures;
            pause.expires_after(20ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        co_return std::nullopt;
    }
};

// CLUSTER FAILOVER on a replica: the old primary answers MOVED to the new one, which the client
// follows at once. Then SIGKILL of a primary: commands on its slots fail (transient codes, never a
// hang) until its replica is elected, then succeed on the new primary.
TEST_F(ClusterFailoverTest, CommandsFollowAPromotedReplicaAndSurviveAKilledPrimary) {
    run_coroutine(
        io_,
        [&]() -> asio::awaitable<void> {
            auto client = co_await connect();
            const std::uint16_t slot = 100;
            const auto key = key_in_slot(slot, ":failover");
            co_await client->async_exec(redis::command("SET", key, "before"));
            const auto old_primary = *client->primary_for(slot);
            const auto slots = blocking_command(old_primary.port, {"CLUSTER", "SLOTS"});
            std::uint16_t replica = 0;
            for (const auto& range : slots.elements()) {
                if (range.elements()[0].as_integer() <= slot &&
                    slot <= range.elements()[1].as_integer()) {
                    replica =
                        static_cast<std::uint16_t>(range.elements()[3].elements()[1].as_integer());
                }
            }
            if (replica == 0) {
                ADD_FAILURE() << "the slot's primary has no replica";
                co_return;
            }

            const auto manual_start = clock::now();
            blocking_command(replica, {"CLUSTER", "FAILOVER"});
            int failures = 0;
            // Served as soon as the old primary redirects: poll until the new one serves it.
            std::optional<clock::duration> manual;
            while (clock::now() - manual_start < 10s) {
                auto [ec, reply] = co_await client->async_exec_until(
                    redis::command("SET", key, "after-failover"), clock::now() + 1s,
                    asio::as_tuple(asio::use_awaitable));
                if (!ec && client->primary_for(slot)->port == replica) {
                    manual = clock::now() - manual_start;
                    break;
                }
                failures += ec ? 1 : 0;
                asio::steady_timer pause(io_, 20ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            if (!manual) {
                ADD_FAILURE() << "the promoted replica never served the slot";
                co_return;
            }
            EXPECT_GE(client->stats().moved, 1u) << "the old primary's MOVED was not followed";
            auto value = co_await client->async_exec(redis::command("GET", key));
            EXPECT_EQ(value.text(), "after-failover");

            // SIGKILL the (new) primary: its replica (the old primary) takes over.
            node_on(*cluster_, replica).kill();
            const auto killed = co_await until_served(
                *client, redis::command("SET", key, "after-kill"), 15s, failures);
            if (!killed) {
                ADD_FAILURE() << "the slot was never served again after SIGKILL";
                co_return;
            }
            EXPECT_EQ(client->primary_for(slot)->port, old_primary.port);
            std::printf(
                "[ figures  ] CLUSTER FAILOVER → usable in %lld ms; SIGKILLed primary → "
                "usable in %lld ms (%d transient failures, %llu map loads)\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(*manual).count()),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(*killed).count()),
                failures, static_cast<unsigned long long>(client->stats().map_refreshes));
        },
        60s);
}

}  // namespace
}  // namespace keyedpool::test
