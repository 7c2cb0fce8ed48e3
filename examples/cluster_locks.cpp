// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Locks across a Redis Cluster. Eight accounts live on a cluster (their keys spread over its
// shards by hash slot); four service instances — each with its own lock service, as separate
// processes would have — move money between them with a read-modify-write (GET, think, SET). Run
// without locks, concurrent transfers overwrite each other and money appears or vanishes; run
// under each account's lock, the total stays exact. With `{account}` hash tags, an account's
// balance and its lock live on the same shard; a release wakes the next waiter through sharded
// pub/sub on that shard only.
//
// Usage: cluster_locks --cluster-url redis-cluster://127.0.0.1:7000[,host:port...]
#include <keyedpool/keyedpool.hpp>
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace redis = keyedpool::redis;
using namespace std::chrono_literals;

constexpr int accounts = 8;
constexpr int instances = 4;
constexpr int transfers_per_instance = 25;

std::string balance_key(int account) {
    return fmt::format("{{account-{}}}:balance", account);  // the hash tag: the lock's too
}

/// Adds `amount` to an account's balance: read, think, write — under the account's lock when
/// `locks` is given.
asio::awaitable<void> add(redis::ClusterClient& cluster, keyedpool::LockService* locks, int account,
                          int amount) {
    keyedpool::LockGuard guard;
    if (locks != nullptr) {
        keyedpool::LockOptions options{.wait = 10s, .lease = 5s};
        guard = co_await locks->async_lock(fmt::format("account-{}", account), options);
    }
    auto balance = co_await cluster.async_exec(redis::command("GET", balance_key(account)));
    asio::steady_timer think(co_await asio::this_coro::executor, 1ms);  // a slow computation
    co_await think.async_wait(asio::use_awaitable);
    const long long next = std::stoll(balance.text()) + amount;
    co_await cluster.async_exec(redis::command("SET", balance_key(account), next));
    if (guard.owns_lock()) {
        co_await guard.async_release();
    }
}

/// One service instance: its transfers, one after another (each moves 1 between two accounts).
asio::awaitable<void> instance(redis::ClusterConfig config, int id, bool locked) {
    auto ex = co_await asio::this_coro::executor;
    auto cluster = co_await redis::ClusterClient::async_connect(ex, config);
    redis::RedisLockServiceOptions options;
    options.cluster = config;  // the lock service routes by slot too
    redis::RedisLockService locks(ex, options);
    for (int i = 0; i < transfers_per_instance; ++i) {
        const int from = (id + i) % accounts;
        const int to = (id * 3 + i * 5 + 1) % accounts;
        if (from == to) {
            continue;
        }
        co_await add(*cluster, locked ? &locks : nullptr, from, -1);
        co_await add(*cluster, locked ? &locks : nullptr, to, +1);
    }
    cluster->close();
}

/// Every account back to 100, the instances run at once, and the total after (800 when no update
/// was lost).
asio::awaitable<long long> round(redis::ClusterClient& cluster, redis::ClusterConfig config,
                                 bool locked) {
    auto ex = co_await asio::this_coro::executor;
    for (int a = 0; a < accounts; ++a) {
        co_await cluster.async_exec(redis::command("SET", balance_key(a), 100));
    }
    int remaining = instances;
    std::exception_ptr failure;
    asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
    for (int id = 0; id < instances; ++id) {
        asio::co_spawn(ex, instance(config, id, locked), [&](std::exception_ptr e) {
            failure = e ? e : failure;
            if (--remaining == 0) {
                all_done.cancel();
            }
        });
    }
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    if (failure) {
        std::rethrow_exception(failure);
    }
    long long total = 0;
    std::string balances;
    for (int a = 0; a < accounts; ++a) {
        auto balance = co_await cluster.async_exec(redis::command("GET", balance_key(a)));
        balances += fmt::format(" {}", balance.text());
        total += std::stoll(balance.text());
    }
    fmt::print("{} instances x {} transfers {}:\n  balances{}\n  total {} (expected {}: {})\n",
               instances, transfers_per_instance,
               locked ? "under the accounts' locks" : "WITHOUT locks", balances, total,
               accounts * 100, total == accounts * 100 ? "no update lost" : "updates lost");
    co_return total;
}

asio::awaitable<void> run(redis::ClusterConfig config) {
    auto ex = co_await asio::this_coro::executor;
    auto cluster = co_await redis::ClusterClient::async_connect(ex, config);
    fmt::print("cluster of {} primaries; where each account lives:\n", cluster->stats().primaries);
    for (int a = 0; a < accounts; ++a) {
        const auto node = cluster->primary_for(redis::hash_slot(balance_key(a)));
        fmt::print("  account-{} (slot {:>5}) on {}:{}\n", a, redis::hash_slot(balance_key(a)),
                   node->host, node->port);
    }
    co_await round(*cluster, config, false);
    co_await round(*cluster, config, true);
    const auto stats = cluster->stats();
    fmt::print("this client: {} connections opened (one per primary), {} MOVED, {} ASK\n",
               stats.connections.builds, stats.moved, stats.asked);
    cluster->close();
}

int main(int argc, char** argv) {
    std::string url;
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--cluster-url") == 0) {
            url = argv[i + 1];
        }
    }
    if (url.empty()) {
        fmt::print("usage: cluster_locks --cluster-url redis-cluster://host:port[,host:port...]\n");
        return 2;
    }
    spdlog::set_level(spdlog::level::warn);
    asio::io_context io;
    redis::ClusterConfig defaults;
    defaults.node.connect_timeout = 2s;
    auto config = redis::parse_cluster_url(url, defaults);
    int status = 0;
    asio::co_spawn(io, run(config), [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& error) {
                fmt::print("failed: {}\n", error.what());
                status = 1;
            }
        }
    });
    io.run();
    return status;
}
