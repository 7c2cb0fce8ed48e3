// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// RedisSemaphoreService across OS processes, on a real redis-server: the limit holds with 4
// processes contending, permits are served first come first served, a killed holder's permits
// come back within one lease, and a paused holder is told it lost them.
#include "child_process.hpp"
#include "lock_worker_process.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/redis/semaphore_service.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class SemaphoreProcessTest : public ::testing::Test {
  protected:
    redis::RedisSemaphoreServiceOptions options() const {
        redis::RedisSemaphoreServiceOptions o;
        o.connection = server_.config();
        return o;
    }
    template <typename Body>
    void run(Body body) {
        run_coroutine(io_, std::move(body));
    }

    QuietLogger quiet_;
    RedisServer server_;
    asio::io_context io_;
};

SemaphoreOptions of(std::size_t limit, std::size_t permits, clock::duration wait,
                    clock::duration lease) {
    SemaphoreOptions o;
    o.limit = limit;
    o.permits = permits;
    o.wait = wait;
    o.lease = lease;
    return o;
}

struct Acquisition {
    long long asked, start, end;
};

/// `redis-cli monitor` on the server, into a file: every command the server runs, in the order it
/// runs them, including those a script runs ("[0 lua]" lines).
class Monitor {
  public:
    explicit Monitor(std::uint16_t port)
        : path_(::testing::TempDir() + "keyedpool-monitor-" + std::to_string(::getpid())) {
        const int fd = ::open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0) {
            throw std::runtime_error("cannot create " + path_);
        }
        pid_ = spawn_bound_child(
            {"stdbuf", "-oL", "redis-cli", "-p", std::to_string(port), "monitor"}, fd);
        ::close(fd);
    }
    ~Monitor() {
        stop();
        std::remove(path_.c_str());
    }
    /// Waits until the monitor has written everything the server ran before `marker` (a command
    /// the caller sends after the run), then stops it. The lines so far.
    std::vector<std::string> lines_until(const std::string& marker) {
        const auto give_up = clock::now() + 20s;
        std::vector<std::string> lines;
        while (clock::now() < give_up) {
            lines.clear();
            std::ifstream in(path_);
            bool found = false;
            for (std::string line; std::getline(in, line);) {
                found = found || line.find(marker) != std::string::npos;
                lines.push_back(std::move(line));
            }
            if (found) {
                break;
            }
            ::usleep(10'000);
        }
        stop();
        return lines;
    }

  private:
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    std::string path_;
    pid_t pid_ = -1;
};

/// The quoted words of a monitor line.
std::vector<std::string> words_of(const std::string& line) {
    std::vector<std::string> words;
    std::istringstream in(line);
    for (std::string w; in >> std::quoted(w);) {
        words.push_back(w);
    }
    return words;
}

// 4 processes x 200 acquisitions of one permit of 3: never more than 3 holders at once (from the
// holding intervals the workers record: each lies within the server's grant and release), every
// acquisition served, and those that had to wait granted exactly in the order they queued (from
// the server's own command stream, MONITOR).
TEST_F(SemaphoreProcessTest, FourProcessesNeverHoldMoreThanTheLimitAndAreServedInOrder) {
    constexpr int processes = 4;
    constexpr int iterations = 200;
    constexpr int limit = 3;
    Monitor monitor(server_.port());
    std::vector<std::string> files;
    std::vector<std::unique_ptr<Worker>> workers;
    for (int p = 0; p < processes; ++p) {
        files.push_back(::testing::TempDir() + "keyedpool-permits-" + std::to_string(::getpid()) +
                        "-" + std::to_string(p));
        workers.push_back(std::make_unique<Worker>(std::vector<std::string>{
            "permits", std::to_string(server_.port()), "budget", std::to_string(iterations),
            std::to_string(limit), files.back()}));
    }
    for (auto& w : workers) {
        EXPECT_EQ(w->wait(), 0);
    }
    std::vector<Acquisition> all;
    for (auto& f : files) {
        std::ifstream in(f);
        Acquisition a{};
        while (in >> a.asked >> a.start >> a.end) {
            all.push_back(a);
        }
        std::remove(f.c_str());
    }
    ASSERT_EQ(all.size(), static_cast<std::size_t>(processes * iterations))
        << "an acquisition was never served";
    // Holders at once: +1 at each start, -1 at each end (ends first on a tie).
    std::vector<std::pair<long long, int>> events;
    for (const auto& a : all) {
        events.emplace_back(a.start, +1);
        events.emplace_back(a.end, -1);
    }
    std::sort(events.begin(), events.end());
    int holders = 0, most = 0;
    for (const auto& [at, delta] : events) {
        holders += delta;
        most = std::max(most, holders);
    }
    EXPECT_LE(most, limit) << "more holders at once than the limit";
    EXPECT_EQ(most, limit) << "the limit was never reached: the test did not contend";
    // FIFO, as the server saw it: the queued tokens (RPUSH on the queue) must be granted (ZADD
    // on the holders) in the order they were queued, whichever process they came from.
    run([&]() -> asio::awaitable<void> {
        auto c = co_await redis::Connection::async_connect(io_.get_executor(), server_.config());
        co_await c->async_exec(redis::command("ECHO", "monitor-end"));
        c->close();
    });
    std::map<std::string, std::size_t> queued_at;  // token → place in arrival order
    std::vector<std::size_t> granted;              // queue places, in the order granted
    std::set<std::string> grants;
    for (const auto& line : monitor.lines_until("monitor-end")) {
        const auto w = words_of(line);
        // time, "[0", "lua]", command, key, arguments...
        if (w.size() == 6 && w[3] == "RPUSH" && w[4].ends_with(":queue")) {
            queued_at.emplace(w[5], queued_at.size());
        } else if (w.size() == 7 && w[3] == "ZADD" && w[4].ends_with(":holders")) {
            // The first ZADD grants; a later one for the same token (its own retry finding the
            // permit already handed to it) renews.
            if (auto it = queued_at.find(w[6]); it != queued_at.end() && !grants.count(w[6])) {
                grants.insert(w[6]);
                granted.push_back(it->second);
            }
        }
    }
    std::size_t out_of_order = 0;
    for (std::size_t i = 1; i < granted.size(); ++i) {
        out_of_order += granted[i] < granted[i - 1] ? 1 : 0;
    }
    std::printf(
        "[ figures  ] %d acquisitions: most holders at once %d; %zu waited in the queue, "
        "%zu of them granted out of queue order\n",
        processes * iterations, most, queued_at.size(), out_of_order);
    EXPECT_GT(queued_at.size(), 0u) << "nobody waited: the test did not contend";
    EXPECT_EQ(granted.size(), queued_at.size()) << "a queued acquisition was never granted";
    EXPECT_EQ(out_of_order, 0u) << "waiters were served out of order";
}

// Eight acquisitions from four clients (each its own service and connections, as four processes
// are to the server), each started once the one before it is queued in Redis, are served exactly
// in that order. The weights make each release hand over to exactly one waiter (so the order of
// completions is the order of grants), and at one step a lighter waiter that would fit stands
// behind a heavier one that does not: it must not overtake.
TEST_F(SemaphoreProcessTest, ServedInTheOrderTheyQueuedAcrossClients) {
    run([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        std::vector<std::unique_ptr<redis::RedisSemaphoreService>> clients;
        for (int i = 0; i < 4; ++i) {
            clients.push_back(std::make_unique<redis::RedisSemaphoreService>(ex, options()));
        }
        auto probe = co_await redis::Connection::async_connect(ex, server_.config());
        auto holder = co_await clients[0]->async_acquire("fifo", of(3, 3, 1s, 30s));
        // Releasing 3 (holder) grants #0; #0 grants #1; ...; releasing #3 frees 3: #4 (1) is
        // granted, #5 (3) does not fit in the 2 left, and #6 (2) would.
        const std::vector<std::size_t> weights{2, 3, 2, 3, 1, 3, 2, 3};
        std::vector<PermitGuard> guards(weights.size());
        std::vector<int> served;
        asio::steady_timer pause(ex);
        for (std::size_t i = 0; i < weights.size(); ++i) {
            clients[i % 4]->async_acquire("fifo", of(3, weights[i], 20s, 30s),
                                          [&, i](error_code ec, PermitGuard g) {
                                              EXPECT_FALSE(ec) << i << ": " << ec.message();
                                              guards[i] = std::move(g);
                                              served.push_back(static_cast<int>(i));
                                          });
            for (;;) {  // until it is queued in Redis
                auto queued = co_await probe->async_exec(
                    redis::command("LLEN", "keyedpool:semaphore:{fifo}:queue"));
                if (queued.as_integer() == static_cast<long long>(i + 1)) {
                    break;
                }
                pause.expires_after(1ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
        }
        co_await holder.async_release();
        // Release each holder in the order served until all were served.
        std::size_t released = 0;
        const auto give_up = clock::now() + 10s;
        while (released < weights.size() && clock::now() < give_up) {
            if (released < served.size()) {
                co_await guards[served[released]].async_release();
                ++released;
                continue;
            }
            pause.expires_after(1ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(served, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
        probe->close();
    });
}

// A holder killed with SIGKILL never releases: its permits come back when its lease ends.
TEST_F(SemaphoreProcessTest, AKilledHoldersPermitsComeBackWithinOneLease) {
    Worker holder({"permit-hold", std::to_string(server_.port()), "killed", "2", "2", "400", "0"});
    ASSERT_EQ(holder.read_line(), "acquired");
    const auto acquired_at = clock::now();
    holder.signal(SIGKILL);
    holder.wait();
    run([&]() -> asio::awaitable<void> {
        redis::RedisSemaphoreService semaphores(io_.get_executor(), options());
        auto [busy, none] = co_await semaphores.async_try_acquire(
            "killed", of(2, 1, 0s, 10s), asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(busy, ResultCode::lock_busy);
        auto guard = co_await semaphores.async_acquire("killed", of(2, 2, 10s, 10s));
        const auto waited = clock::now() - acquired_at;
        EXPECT_GE(waited, 300ms) << "taken before the dead holder's lease ended";
        EXPECT_LT(waited, 400ms + 1s) << "the dead holder's permits came back late";
        EXPECT_EQ(guard.permits(), 2u);
        co_await guard.async_release();
    });
}

// A holder paused (SIGSTOP) past its lease loses its permit to a new holder; when it resumes it
// is told, and its renewal and release do not touch the new holder's permit.
TEST_F(SemaphoreProcessTest, APausedHolderIsToldItsPermitWasLost) {
    Worker holder({"permit-hold", std::to_string(server_.port()), "paused", "1", "1", "300", "1"});
    ASSERT_EQ(holder.read_line(), "acquired");
    holder.signal(SIGSTOP);
    run([&]() -> asio::awaitable<void> {
        redis::RedisSemaphoreService semaphores(io_.get_executor(), options());
        auto guard = co_await semaphores.async_acquire("paused", of(1, 1, 10s, 30s));
        holder.signal(SIGCONT);
        EXPECT_EQ(holder.read_line(), "lost");
        EXPECT_EQ(holder.read_line(), "release lock_lost");
        EXPECT_EQ(holder.wait(), 0);
        EXPECT_TRUE(guard.owns_permits());
        auto [busy, none] = co_await semaphores.async_try_acquire(
            "paused", of(1, 1, 0s, 10s), asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(busy, ResultCode::lock_busy) << "the stale holder gave back our permit";
        auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(release_ec);
    });
}

// A pool building within a fleet budget on Redis: when the server loses the permits of a cached
// client (here deleted, as a failover without replication would), the watchdog's renewal is
// refused, the client is closed and counted, and the next get rebuilds it with a new permit.
TEST_F(SemaphoreProcessTest, APoolClosesAClientWhosePermitWasLostAndTheNextGetRebuilds) {
    run([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        PermitSource<int> permits;
        permits.service = std::make_shared<redis::RedisSemaphoreService>(ex, options());
        permits.permit_for = [](const int&) { return ClientPermit{"fleet-db", 4, 1}; };
        permits.lease = 300ms;
        const auto config = server_.config();
        KeyedClientPool<int, redis::Connection> pool(
            ex, [ex, config](const int&) { return redis::Connection::async_connect(ex, config); },
            PoolOptions{}, permits);
        auto first = co_await pool.async_get(1);
        auto probe = co_await redis::Connection::async_connect(ex, config);
        auto held = co_await probe->async_exec(
            redis::command("ZCARD", "keyedpool:semaphore:{fleet-db}:holders"));
        EXPECT_EQ(held.as_integer(), 1) << "the cached client holds no permit in Redis";
        co_await probe->async_exec(redis::command("DEL", "keyedpool:semaphore:{fleet-db}:holders"));
        asio::steady_timer pause(ex);
        const auto give_up = clock::now() + 3s;
        while (pool.stats().permits_lost == 0 && clock::now() < give_up) {
            pause.expires_after(5ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(pool.stats().permits_lost, 1u);
        EXPECT_FALSE(first->is_connected()) << "the client of a lost permit stayed open";
        auto second = co_await pool.async_get(1);
        EXPECT_NE(second.get(), first.get()) << "the next get did not rebuild";
        held = co_await probe->async_exec(
            redis::command("ZCARD", "keyedpool:semaphore:{fleet-db}:holders"));
        EXPECT_EQ(held.as_integer(), 1);
        co_await pool.async_shutdown();
        pause.expires_after(50ms);  // the background release
        co_await pause.async_wait(asio::use_awaitable);
        held = co_await probe->async_exec(
            redis::command("ZCARD", "keyedpool:semaphore:{fleet-db}:holders"));
        EXPECT_EQ(held.as_integer(), 0) << "shutdown left a permit held in Redis";
        probe->close();
    });
}

// An unreachable permit service: the get fails with its typed error (fail closed, the default),
// or the client is built anyway, with a warning and a count (fail open).
TEST(PoolPermitService, AnUnreachableServiceFailsClosedOrIsSkippedWhenOpen) {
    QuietLogger quiet;
    RedisServer data;  // the clients' server; the permit service points nowhere
    asio::io_context io;
    for (const auto mode : {PermitServiceDown::fail_closed, PermitServiceDown::fail_open}) {
        run_coroutine(io, [&]() -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            redis::RedisSemaphoreServiceOptions o;
            o.connection.port = free_loopback_port();  // nobody listens
            o.connection.connect_timeout = 300ms;
            o.request_timeout = 300ms;
            PermitSource<int> permits;
            permits.service = std::make_shared<redis::RedisSemaphoreService>(ex, o);
            permits.permit_for = [](const int&) { return ClientPermit{"db", 4, 1}; };
            permits.when_service_fails = mode;
            PoolOptions options;
            options.wait_timeout = 1s;
            const auto config = data.config();
            KeyedClientPool<int, redis::Connection> pool(
                ex,
                [ex, config](const int&) { return redis::Connection::async_connect(ex, config); },
                options, permits);
            auto [ec, client] = co_await pool.async_get(1, asio::as_tuple(asio::use_awaitable));
            if (mode == PermitServiceDown::fail_closed) {
                EXPECT_TRUE(ec == ResultCode::connect_failed || ec == ResultCode::timeout)
                    << ec.message();
                EXPECT_EQ(pool.stats().builds, 0u);
            } else {
                EXPECT_FALSE(ec) << ec.message();
                EXPECT_EQ(pool.stats().builds_without_permit, 1u);
            }
            co_await pool.async_shutdown();
        });
    }
}

}  // namespace
}  // namespace keyedpool::test
