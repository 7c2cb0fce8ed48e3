// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A connection budget shared by a fleet of processes.
//
// A database allows 16 connections (the demo's TCP server). Four OS processes each keep a
// KeyedClientPool over 8 connection ids, with idle eviction, and serve bursts of requests. Run
// twice, side by side:
//
//   max_clients:  each pool caps itself at 8 clients. Four processes × 8 is 32: the server
//                 refuses connections, to whichever process asks last.
//   fleet budget: each pool builds only with a permit of "demo-db" (limit 16) from a
//                 RedisSemaphoreService on the loopback redis-server: at most 16 connections
//                 at the server, none refused; a process that finds no permit free waits in line
//                 (FIFO across processes) and gets one when another process's idle client is
//                 evicted.
//
// Usage: fleet_budget --redis-port N   (or --redis-url URL)
//        fleet_budget --worker ...     (one process of the fleet; started by the above)
#include <keyedpool/keyedpool.hpp>

#include "fake_database.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace std::chrono_literals;
using keyedpool::ResultCode;

namespace {

constexpr int processes = 4;
constexpr int ids_per_process = 8;
constexpr int server_limit = 16;

// ---- a client of the database -------------------------------------------------------------------

/// One connection to the database: connected when made, closed by the pool.
class DbClient {
  public:
    static asio::awaitable<std::shared_ptr<DbClient>> connect(tcp::endpoint endpoint) {
        tcp::socket socket(co_await asio::this_coro::executor);
        co_await socket.async_connect(endpoint, asio::use_awaitable);
        std::string greeting;
        co_await asio::async_read_until(socket, asio::dynamic_buffer(greeting), '\n',
                                        asio::use_awaitable);
        if (greeting.rfind("OK", 0) != 0) {
            throw boost::system::system_error(ResultCode::server_busy);  // refused: too many
        }
        co_return std::make_shared<DbClient>(std::move(socket));
    }
    explicit DbClient(tcp::socket socket) : socket_(std::move(socket)) {}
    bool is_connected() const { return socket_.is_open(); }
    void close() {
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

  private:
    tcp::socket socket_;
};

// ---- one process of the fleet ---------------------------------------------------------------

struct WorkerArgs {
    bool fleet = false;
    std::uint16_t db_port = 0;
    std::string redis_url;
    unsigned seed = 1;
};

/// Serves 8 bursts of requests: each burst uses 6 of the 8 ids, 4 requests per id at once, each
/// holding its client 20 ms; between bursts the process is quiet long enough for idle eviction
/// (100 ms) to close its clients. A request whose get fails is tried again 50 ms later, so every
/// request is served in the end. Prints one line: what it served and how long requests waited
/// for a client (from the first try to the client, failed tries included).
asio::awaitable<int> worker(WorkerArgs args) {
    auto ex = co_await asio::this_coro::executor;
    const tcp::endpoint db(asio::ip::make_address("127.0.0.1"), args.db_port);
    keyedpool::PoolOptions options;
    options.idle_timeout = 100ms;
    options.wait_timeout = 2s;
    options.backoff.initial = 20ms;
    options.backoff.max = 100ms;
    using Pool = keyedpool::KeyedClientPool<int, DbClient>;
    auto factory = [db](const int&) { return DbClient::connect(db); };
    std::unique_ptr<Pool> pool;
    if (args.fleet) {
        keyedpool::redis::RedisSemaphoreServiceOptions service;
        service.connection = keyedpool::redis::parse_url(args.redis_url);
        keyedpool::PermitSource<int> permits;
        permits.service = std::make_shared<keyedpool::redis::RedisSemaphoreService>(ex, service);
        permits.permit_for = [](const int&) {
            return keyedpool::ClientPermit{"demo-db", server_limit, 1};
        };
        permits.lease = 5s;
        pool = std::make_unique<Pool>(ex, factory, options, permits);
    } else {
        options.max_clients = ids_per_process;  // this process's own cap, blind to the others
        pool = std::make_unique<Pool>(ex, factory, options);
    }

    std::mt19937 random(args.seed);
    std::vector<double> waits_ms;
    int failed_gets = 0;
    std::map<std::string, int> errors;
    auto request = [&](int id) -> asio::awaitable<void> {
        asio::steady_timer timer(ex);
        const auto asked = std::chrono::steady_clock::now();  // waits include failed tries
        for (;;) {
            auto [ec, client] = co_await pool->async_get(id, asio::as_tuple(asio::use_awaitable));
            if (!ec) {
                waits_ms.push_back(std::chrono::duration<double, std::milli>(
                                       std::chrono::steady_clock::now() - asked)
                                       .count());
                timer.expires_after(20ms);  // the request's work on the connection
                co_await timer.async_wait(asio::use_awaitable);
                co_return;
            }
            ++failed_gets;
            ++errors[std::string(keyedpool::to_string(static_cast<ResultCode>(ec.value())))];
            timer.expires_after(50ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
    };
    for (int burst = 0; burst < 8; ++burst) {
        std::vector<int> ids(ids_per_process);
        for (int i = 0; i < ids_per_process; ++i) {
            ids[static_cast<std::size_t>(i)] = i;
        }
        std::shuffle(ids.begin(), ids.end(), random);
        ids.resize(6);
        auto group = asio::experimental::make_parallel_group([&] {
            std::vector<decltype(asio::co_spawn(ex, request(0), asio::deferred))> ops;
            for (int id : ids) {
                for (int r = 0; r < 4; ++r) {
                    ops.push_back(asio::co_spawn(ex, request(id), asio::deferred));
                }
            }
            return ops;
        }());
        co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        asio::steady_timer quiet(ex, 150ms);
        co_await quiet.async_wait(asio::use_awaitable);
    }
    const auto stats = pool->stats();
    co_await pool->async_shutdown(asio::as_tuple(asio::use_awaitable));
    std::sort(waits_ms.begin(), waits_ms.end());
    std::string error_list;
    for (const auto& [code, n] : errors) {
        error_list += fmt::format("{}{}x{}", error_list.empty() ? "" : ",", n, code);
    }
    fmt::print(
        "served {} failed_gets {} wait_p50_ms {:.1f} wait_max_ms {:.1f} builds {} "
        "without_permit {} errors {}\n",
        waits_ms.size(), failed_gets, waits_ms[waits_ms.size() / 2], waits_ms.back(), stats.builds,
        stats.builds_without_permit, error_list.empty() ? "-" : error_list);
    std::fflush(stdout);
    co_return 0;
}

// ---- the coordinator --------------------------------------------------------------------------

struct WorkerReport {
    int served = 0, failed_gets = 0;
    double wait_p50_ms = 0, wait_max_ms = 0;
    int builds = 0, without_permit = 0;
    std::string errors;
};

struct RunReport {
    std::vector<WorkerReport> workers;
    int peak = 0, refused = 0, accepted = 0;
    double seconds = 0;
};

/// Starts `args` as a child with its stdout on a pipe; returns {pid, read end}.
std::pair<pid_t, int> spawn_worker(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) {
        throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    std::vector<char*> argv;
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw std::runtime_error("cannot start a worker process");
    }
    return {pid, fds[0]};
}

WorkerReport read_report(int fd) {
    std::string out;
    char chunk[512];
    for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) > 0;) {
        out.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fd);
    WorkerReport r;
    char errors[256] = "";
    if (std::sscanf(out.c_str(),
                    "served %d failed_gets %d wait_p50_ms %lf wait_max_ms %lf builds %d "
                    "without_permit %d errors %255s",
                    &r.served, &r.failed_gets, &r.wait_p50_ms, &r.wait_max_ms, &r.builds,
                    &r.without_permit, errors) != 7) {
        r.served = -1;  // the worker failed; what it said is printed
        fmt::print("a worker failed: {}\n", out);
    }
    r.errors = errors;
    return r;
}

template <typename F>
auto on(asio::io_context& io, F f) {
    std::promise<decltype(f())> result;
    asio::post(io, [&] { result.set_value(f()); });
    return result.get_future().get();
}

RunReport run_fleet(asio::io_context& db_io, FakeDatabase& db, bool fleet,
                    const std::string& redis_url) {
    on(db_io, [&] {
        db.reset_counters();
        return 0;
    });
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::pair<pid_t, int>> children;
    for (int p = 0; p < processes; ++p) {
        std::vector<std::string> args{"fleet_budget", "--worker", fleet ? "fleet" : "max_clients",
                                      std::to_string(db.endpoint().port()), std::to_string(p + 1)};
        if (fleet) {
            args.push_back(redis_url);
        }
        children.push_back(spawn_worker(args));
    }
    RunReport report;
    for (auto& [pid, fd] : children) {
        report.workers.push_back(read_report(fd));
        ::waitpid(pid, nullptr, 0);
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::tie(report.peak, report.refused, report.accepted) = on(db_io, [&] {
        return std::tuple{db.peak(), db.rejected(), db.accepted()};
    });
    return report;
}

void print_side_by_side(const RunReport& local, const RunReport* fleet) {
    auto total = [](const RunReport& r, auto field) {
        long sum = 0;
        for (const auto& w : r.workers) {
            sum += w.*field;
        }
        return sum;
    };
    auto worst = [](const RunReport& r, double WorkerReport::*field) {
        double m = 0;
        for (const auto& w : r.workers) {
            m = std::max(m, w.*field);
        }
        return m;
    };
    auto row = [&](std::string_view what, std::string a, std::string b) {
        fmt::print("  {:<48} {:>16} {:>22}\n", what, a, b);
    };
    auto cell = [&](auto f) { return fleet ? f(*fleet) : std::string("(no redis-server)"); };
    fmt::print("\n  {} processes x {} connection ids; the database allows {} connections\n\n",
               processes, ids_per_process, server_limit);
    row("", "max_clients = 8", "fleet budget (Redis)");
    row("peak connections at the database", std::to_string(local.peak),
        cell([](const RunReport& r) { return std::to_string(r.peak); }));
    row("connections refused by the database", std::to_string(local.refused),
        cell([](const RunReport& r) { return std::to_string(r.refused); }));
    const int requests = processes * 8 * 6 * 4;
    row("requests served", fmt::format("{}/{}", total(local, &WorkerReport::served), requests),
        cell([&](const RunReport& r) {
            return fmt::format("{}/{}", total(r, &WorkerReport::served), requests);
        }));
    row("failed gets (each retried after 50 ms)",
        std::to_string(total(local, &WorkerReport::failed_gets)), cell([&](const RunReport& r) {
            return std::to_string(total(r, &WorkerReport::failed_gets));
        }));
    row("connections made (builds)", std::to_string(total(local, &WorkerReport::builds)),
        cell([&](const RunReport& r) { return std::to_string(total(r, &WorkerReport::builds)); }));
    row("wait for a client, p50 of the worst process (ms)",
        fmt::format("{:.1f}", worst(local, &WorkerReport::wait_p50_ms)),
        cell([&](const RunReport& r) {
            return fmt::format("{:.1f}", worst(r, &WorkerReport::wait_p50_ms));
        }));
    row("wait for a client, max (ms)",
        fmt::format("{:.1f}", worst(local, &WorkerReport::wait_max_ms)),
        cell([&](const RunReport& r) {
            return fmt::format("{:.1f}", worst(r, &WorkerReport::wait_max_ms));
        }));
    row("wall time (s)", fmt::format("{:.2f}", local.seconds),
        cell([](const RunReport& r) { return fmt::format("{:.2f}", r.seconds); }));
    for (const auto* r : {&local, fleet}) {
        if (r == nullptr) {
            continue;
        }
        for (std::size_t i = 0; i < r->workers.size(); ++i) {
            if (r->workers[i].errors != "-") {
                fmt::print("  {} process {}: get errors {}\n",
                           r == &local ? "max_clients" : "fleet", i + 1, r->workers[i].errors);
            }
        }
    }
}

/// The Redis URL from --redis-url or --redis-port, if a server answers there.
std::string redis_url_from(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) == "--redis-port") {
            return std::string("redis://127.0.0.1:") + argv[i + 1];
        }
        if (std::string_view(argv[i]) == "--redis-url") {
            return argv[i + 1];
        }
    }
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    keyedpool::logger()->set_level(spdlog::level::off);  // the demo prints its own figures
    if (argc >= 5 && std::string_view(argv[1]) == "--worker") {
        WorkerArgs args;
        args.fleet = std::string_view(argv[2]) == "fleet";
        args.db_port = static_cast<std::uint16_t>(std::stoi(argv[3]));
        args.seed = static_cast<unsigned>(std::stoul(argv[4]));
        args.redis_url = argc >= 6 ? argv[5] : "";
        asio::io_context io;
        int status = 1;
        asio::co_spawn(io, worker(args), [&](std::exception_ptr e, int rc) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    fmt::print("worker error: {}\n", ex.what());
                }
            }
            status = e ? 1 : rc;
        });
        io.run();
        return status;
    }

    asio::io_context db_io;
    FakeDatabase db(db_io, 5ms, server_limit);
    auto guard = asio::make_work_guard(db_io);
    std::thread db_thread([&] { db_io.run(); });
    const std::string redis_url = redis_url_from(argc, argv);
    const RunReport local = run_fleet(db_io, db, false, redis_url);
    std::optional<RunReport> fleet;
    if (!redis_url.empty()) {
        fleet = run_fleet(db_io, db, true, redis_url);
    }
    print_side_by_side(local, fleet ? &*fleet : nullptr);
    guard.reset();
    asio::post(db_io, [&] { db.stop(); });
    db_io.stop();
    db_thread.join();
    const bool ok = fleet ? fleet->peak <= server_limit && fleet->refused == 0 : true;
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
