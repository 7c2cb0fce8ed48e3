// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// "Relink a shared list": two service instances reorder the same linked list of documents. The
// store (standing in for your database) uses optimistic concurrency: a write whose version is stale
// fails with ResultCode::write_conflict. Run without a lock, instances keep conflicting and `retry`
// has to re-run their work; run under with_lock on the *list id* (the resource, not the method),
// they take turns and nothing conflicts. Either way the list stays consistent.
//
// Usage: relink_list [--redis-url URL | --redis-port N]
#include "lock_backend.hpp"

#include <keyedpool/keyedpool.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using boost::system::error_code;

/// The documents' order, with a version for optimistic concurrency.
struct ListStore {
    std::vector<int> order = std::vector<int>(8);
    long version = 0;
    int conflicts = 0;

    ListStore() { std::iota(order.begin(), order.end(), 0); }

    /// Read, think (network round trips), write back if nobody wrote meanwhile.
    asio::awaitable<error_code> move_to_front(int document) {
        const long read_version = version;
        std::vector<int> next = order;
        asio::steady_timer think(co_await asio::this_coro::executor, 2ms);
        co_await think.async_wait(asio::use_awaitable);
        if (version != read_version) {
            ++conflicts;
            co_return keyedpool::ResultCode::write_conflict;  // "retry your operation"
        }
        next.erase(std::find(next.begin(), next.end(), document));
        next.insert(next.begin(), document);
        order = std::move(next);
        ++version;
        co_return error_code{};
    }
};

asio::awaitable<void> instance(keyedpool::LockService* locks, ListStore& store, int id,
                               int& failures) {
    keyedpool::RetryPolicy policy;
    policy.max_attempts = 50;
    policy.backoff.initial = 1ms;
    for (int i = 0; i < 10; ++i) {
        const int document = (id * 3 + i) % 8;
        auto relink = [&]() -> asio::awaitable<error_code> {
            if (!locks) {
                co_return co_await store.move_to_front(document);
            }
            keyedpool::LockOptions options;
            options.wait = 10s;
            options.lease = 5s;
            co_return co_await keyedpool::with_lock(
                *locks, "list:42", options, [&]() { return store.move_to_front(document); });
        };
        if (auto ec = co_await keyedpool::retry(policy, relink)) {
            ++failures;
            fmt::print("  instance {}: gave up: {}\n", id, ec.message());
        }
    }
}

asio::awaitable<void> run_both(keyedpool::LockService* locks, const char* title) {
    ListStore store;
    int failures = 0;
    auto executor = co_await asio::this_coro::executor;
    const auto start = std::chrono::steady_clock::now();
    auto a = asio::co_spawn(executor, instance(locks, store, 1, failures), asio::deferred);
    auto b = asio::co_spawn(executor, instance(locks, store, 2, failures), asio::deferred);
    co_await asio::experimental::make_parallel_group(std::move(a), std::move(b))
        .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    std::vector<int> sorted = store.order;
    std::sort(sorted.begin(), sorted.end());
    const bool consistent = sorted == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7};
    fmt::print("  {:<28} writes={} write_conflicts={} failures={} list {} ({:.0f} ms)\n", title,
               store.version, store.conflicts, failures, consistent ? "consistent" : "CORRUPT",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                   .count());
}

int main(int argc, char** argv) {
    keyedpool::logger()->set_level(spdlog::level::warn);
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto locks = co_await make_lock_service(argc, argv);
            fmt::print("two instances, 10 relinks each, on list 42:\n");
            co_await run_both(nullptr, "no lock, retry on conflict:");
            co_await run_both(locks.get(), "with_lock(\"list:42\"):");
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    io.run();
}
