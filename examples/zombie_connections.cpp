// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The main demo: why a per-key single-flight pool matters.
//
// An in-process TCP server stands in for a database with a hard connection limit (Aerospike CE,
// Redis maxclients) and a slow handshake. Many coroutines ask at once for a handful of connection
// ids. Two ways of caching one client per id are run against it, side by side:
//
//   naive:  look the id up under a lock, release the lock, connect, store the client
//           (the usual double-checked code): concurrent requests for one id all connect, the later
//           stores overwrite the earlier ones, and the overwritten clients are never closed.
//   pool:   keyedpool::KeyedClientPool: one connect per id, everyone else waits for it.
//
// Usage: zombie_connections [--ids N] [--requests-per-id N] [--accept-delay-ms N]
//                           [--max-connections N]
#include <keyedpool/keyedpool.hpp>

#include "fake_database.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct DemoOptions {
    int ids = 8;
    int requests_per_id = 50;
    int accept_delay_ms = 20;
    int max_connections = 32;
};

// ---- the client ---------------------------------------------------------------------------------

/// A database client. Like many real client libraries (whose background I/O threads keep their
/// sockets alive), it stays connected until close() is called: dropping the last reference does not
/// disconnect it. That is what turns a lost client into a zombie connection.
class DbClient {
  public:
    static asio::awaitable<std::shared_ptr<DbClient>> connect(tcp::endpoint endpoint) {
        auto socket = std::make_shared<tcp::socket>(co_await asio::this_coro::executor);
        co_await socket->async_connect(endpoint, asio::use_awaitable);
        std::string greeting;
        co_await asio::async_read_until(*socket, asio::dynamic_buffer(greeting), '\n',
                                        asio::use_awaitable);
        if (greeting.rfind("OK", 0) != 0) {
            socket->close();
            // The server's refusal becomes a typed code, not a string to match later.
            throw boost::system::system_error(keyedpool::ResultCode::server_busy);
        }
        live_sockets().insert(socket);  // the "background I/O" keeps it alive
        co_return std::make_shared<DbClient>(std::move(socket));
    }

    explicit DbClient(std::shared_ptr<tcp::socket> socket) : socket_(std::move(socket)) {}

    bool is_connected() const { return socket_->is_open(); }

    void close() {
        boost::system::error_code ignored;
        socket_->shutdown(tcp::socket::shutdown_both, ignored);
        socket_->close(ignored);
        live_sockets().erase(socket_);
    }

    static std::set<std::shared_ptr<tcp::socket>>& live_sockets() {
        static std::set<std::shared_ptr<tcp::socket>> sockets;
        return sockets;
    }

  private:
    std::shared_ptr<tcp::socket> socket_;
};

using ClientPtr = std::shared_ptr<DbClient>;

// ---- the naive cache ----------------------------------------------------------------------------

/// The common double-checked code: the lock is released while connecting.
class NaiveCache {
  public:
    explicit NaiveCache(tcp::endpoint endpoint) : endpoint_(endpoint) {}

    asio::awaitable<ClientPtr> get(int id) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = cache_.find(id); it != cache_.end()) {
                co_return it->second;
            }
        }
        auto client = co_await DbClient::connect(endpoint_);  // lock released: N callers connect
        std::lock_guard lock(mutex_);
        cache_[id] = client;  // the last one wins; the others are never closed
        co_return client;
    }

    void close_all() {
        for (auto& [id, client] : cache_) {
            client->close();
        }
        cache_.clear();
    }

  private:
    tcp::endpoint endpoint_;
    std::mutex mutex_;
    std::unordered_map<int, ClientPtr> cache_;
};

// ---- the run ------------------------------------------------------------------------------------

struct RunResult {
    std::string name;
    int requests = 0;
    int served = 0;
    std::map<std::string, int> errors;  // by code
    int distinct_clients = 0;
    int connections_accepted = 0;
    int refused_by_limit = 0;
    int peak_open = 0;
    int zombies = 0;  // still open after the cache closed everything it knows about
    double seconds = 0;
};

template <typename Get, typename CloseAll>
RunResult run(std::string name, asio::io_context& io, FakeDatabase& db, const DemoOptions& options,
              Get get, CloseAll close_all) {
    RunResult result;
    result.name = std::move(name);
    db.reset_counters();
    std::set<ClientPtr> distinct;
    int remaining = options.ids * options.requests_per_id;
    const auto start = std::chrono::steady_clock::now();
    for (int id = 0; id < options.ids; ++id) {
        for (int r = 0; r < options.requests_per_id; ++r) {
            ++result.requests;
            asio::co_spawn(
                io,
                [&, id]() -> asio::awaitable<void> {
                    try {
                        auto client = co_await get(id);
                        ++result.served;
                        distinct.insert(client);
                    } catch (const boost::system::system_error& e) {
                        ++result.errors[e.code() == keyedpool::ResultCode::server_busy
                                            ? "server_busy (connection limit)"
                                            : e.code().message()];
                    }
                    if (--remaining == 0) {
                        io.stop();  // every request has its answer
                    }
                },
                asio::detached);
        }
    }
    io.restart();
    io.run_for(60s);  // returns when the last request is answered (60 s is only a safety net)
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.distinct_clients = static_cast<int>(distinct.size());
    result.connections_accepted = db.accepted();
    result.refused_by_limit = db.rejected();
    result.peak_open = db.peak();
    close_all();
    io.restart();
    io.run_for(200ms);  // let the server see the closes
    result.zombies = db.open();
    return result;
}

void print(const RunResult& naive, const RunResult& pooled) {
    auto row = [](std::string_view what, auto a, auto b) {
        fmt::print("  {:<42} {:>14} {:>16}\n", what, a, b);
    };
    fmt::print("\n  {:<42} {:>14} {:>16}\n", "", naive.name, pooled.name);
    row("get() requests", naive.requests, pooled.requests);
    row("requests served", naive.served, pooled.served);
    auto errors = [](const RunResult& r) {
        int n = 0;
        for (auto& [what, count] : r.errors)
            n += count;
        return n;
    };
    row("requests failed", errors(naive), errors(pooled));
    row("connections opened at the server", naive.connections_accepted,
        pooled.connections_accepted);
    row("connections refused (server limit)", naive.refused_by_limit, pooled.refused_by_limit);
    row("peak open connections at the server", naive.peak_open, pooled.peak_open);
    row("distinct clients handed out", naive.distinct_clients, pooled.distinct_clients);
    row("zombie connections left open", naive.zombies, pooled.zombies);
    row("time (ms)", fmt::format("{:.1f}", naive.seconds * 1e3),
        fmt::format("{:.1f}", pooled.seconds * 1e3));
    for (const auto* r : {&naive, &pooled}) {
        for (auto& [what, count] : r->errors) {
            fmt::print("  {} errors: {} x {}\n", r->name, count, what);
        }
    }
}

int main(int argc, char** argv) {
    DemoOptions options;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        const int value = std::atoi(argv[i + 1]);
        if (value <= 0) {
            fmt::print(stderr, "{} needs a positive number\n", flag);
            return 2;
        }
        if (flag == "--ids")
            options.ids = value;
        else if (flag == "--requests-per-id")
            options.requests_per_id = value;
        else if (flag == "--accept-delay-ms")
            options.accept_delay_ms = value;
        else if (flag == "--max-connections")
            options.max_connections = value;
        else {
            fmt::print(stderr, "unknown option {}\n", flag);
            return 2;
        }
    }
    keyedpool::logger()->set_level(spdlog::level::off);  // the table says it all

    asio::io_context io;
    FakeDatabase db(io, std::chrono::milliseconds(options.accept_delay_ms),
                    options.max_connections);
    fmt::print(
        "keyedpool demo: {} connection ids x {} concurrent requests each, against a server on "
        "{} that takes {} ms to accept and allows {} connections.\n",
        options.ids, options.requests_per_id, db.endpoint().address().to_string(),
        options.accept_delay_ms, options.max_connections);

    NaiveCache naive(db.endpoint());
    auto naive_result = run(
        "naive cache", io, db, options, [&](int id) { return naive.get(id); },
        [&] { naive.close_all(); });
    // The naive run's zombies are still connected; disconnect them so both runs start equal.
    for (auto& socket : std::set(DbClient::live_sockets())) {
        DbClient(socket).close();
    }
    io.restart();
    io.run_for(200ms);

    const auto endpoint = db.endpoint();
    keyedpool::KeyedClientPool<int, DbClient> pool(
        io.get_executor(), [endpoint](const int&) { return DbClient::connect(endpoint); });
    auto pool_result = run(
        "KeyedClientPool", io, db, options, [&](int id) { return pool.async_get(id); },
        [&] { pool.async_shutdown(asio::detached); });

    print(naive_result, pool_result);
    const auto stats = pool.stats();
    fmt::print("\n  pool stats: builds={} closes={} hits={} misses={} build_failures={}\n",
               stats.builds, stats.closes, stats.hits, stats.misses, stats.build_failures);
    db.stop();

    const bool pool_ok = pool_result.zombies == 0 && pool_result.distinct_clients == options.ids &&
                         pool_result.served == pool_result.requests;
    fmt::print("\n  {}\n", pool_ok ? "KeyedClientPool: one connection per id, nothing leaked."
                                   : "UNEXPECTED: the pool leaked or failed requests.");
    return pool_ok ? 0 : 1;
}
