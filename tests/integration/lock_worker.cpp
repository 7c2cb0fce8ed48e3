// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A separate OS process for the multi-process lock tests (started by redis_process_test).
//
//   lock_worker counter PORT RESOURCE ITERATIONS INTERVALS_FILE
//       ITERATIONS times: under the lock, GET the counter, SET it + 1, and append the critical
//       section's [start, end] (CLOCK_MONOTONIC ns, comparable across processes) to the file.
//   lock_worker fenced LOCK_URL STORE_PORT RESOURCES ITERATIONS
//       until ITERATIONS writes were accepted: takes the lock of each of RESOURCES
//       (comma-separated) in turn through LOCK_URL (a redis-sentinel:// or redis-cluster:// URL;
//       transient errors are retried), and under it writes through a fenced store (the redis-server
//       at STORE_PORT, whose script refuses a token not above the last one it accepted). A refused
//       write means another holder had a higher token: this holder must be told lock_lost within
//       two leases, else it is counted as unexplained. Prints "fenced ACCEPTED REFUSED TOLD_LOST
//       UNEXPLAINED TRANSIENT_ERRORS" at the end.
//   lock_worker hold PORT RESOURCE LEASE_MS AUTO_RENEW
//       takes the lock, prints "acquired FENCE", waits until the lock is lost, prints "lost", tries
//       to release, prints "release CODE_NAME", and exits.
//   lock_worker permits PORT RESOURCE ITERATIONS LIMIT INTERVALS_FILE
//       ITERATIONS times: asks for one permit of RESOURCE (of LIMIT), holds it ~1 ms and releases
//       it; appends "ASKED START END" (CLOCK_MONOTONIC ns) per acquisition to the file.
//   lock_worker permit-hold PORT RESOURCE LIMIT PERMITS LEASE_MS AUTO_RENEW
//       takes PERMITS permits (of LIMIT), prints "acquired", waits until they are lost, prints
//       "lost", tries to release, prints "release CODE_NAME", and exits.
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/semaphore_service.hpp>
#include <keyedpool/redis/url.hpp>
#include <keyedpool/with_lock.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace keyedpool;

namespace {

long long monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

std::string code_name(boost::system::error_code ec) {
    return ec ? std::string(to_string(static_cast<ResultCode>(ec.value()))) : "ok";
}

redis::RedisLockServiceOptions options_for(int port) {
    redis::RedisLockServiceOptions options;
    options.connection.port = static_cast<std::uint16_t>(port);
    return options;
}

asio::awaitable<int> counter(int port, std::string resource, int iterations, std::string file) {
    auto ex = co_await asio::this_coro::executor;
    redis::RedisLockService locks(ex, options_for(port));
    auto data = co_await redis::Connection::async_connect(ex, options_for(port).connection);
    std::FILE* out = std::fopen(file.c_str(), "w");
    LockOptions lock_options;
    lock_options.wait = std::chrono::seconds(60);
    lock_options.lease = std::chrono::seconds(10);
    for (int i = 0; i < iterations; ++i) {
        co_await with_lock(locks, resource, lock_options, [&]() -> asio::awaitable<void> {
            const long long start = monotonic_ns();
            auto value = co_await data->async_exec(redis::command("GET", resource + ":counter"));
            const long long n = value.is_nil() ? 0 : std::stoll(value.text());
            co_await data->async_exec(redis::command("SET", resource + ":counter", n + 1));
            std::fprintf(out, "%lld %lld\n", start, monotonic_ns());
        });
    }
    std::fclose(out);
    data->close();
    co_return 0;
}

// The fenced store's write for one resource (KEYS[1]: its last accepted token): accepted (the
// new count, and the store's time in ms appended to store:times) only with a token above every
// token accepted before for that resource; -1 otherwise.
constexpr const char* fenced_increment = R"lua(
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
local time = redis.call('TIME')
redis.call('RPUSH', 'store:times', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
return redis.call('INCR', 'store:counter')
)lua";

asio::awaitable<int> fenced(std::string lock_url, int store_port, std::string resource_list,
                            int iterations) {
    auto ex = co_await asio::this_coro::executor;
    redis::RedisLockServiceOptions options;
    if (lock_url.rfind("redis-cluster://", 0) == 0) {
        options.cluster = redis::parse_cluster_url(lock_url);
        options.cluster.node.connect_timeout = std::chrono::seconds(1);
    } else {
        options.connection = redis::parse_url(lock_url);
        options.connection.connect_timeout = std::chrono::seconds(1);
    }
    std::vector<std::string> resources;
    for (std::size_t at = 0; at <= resource_list.size();) {
        const auto comma = std::min(resource_list.find(',', at), resource_list.size());
        resources.push_back(resource_list.substr(at, comma - at));
        at = comma + 1;
    }
    options.request_timeout = std::chrono::seconds(1);
    redis::RedisLockService locks(ex, options);
    redis::ConnectionConfig store_config;
    store_config.port = static_cast<std::uint16_t>(store_port);
    auto store = co_await redis::Connection::async_connect(ex, store_config);
    LockOptions lock_options;
    lock_options.wait = std::chrono::seconds(10);
    lock_options.lease = std::chrono::milliseconds(900);
    lock_options.auto_renew = true;
    asio::steady_timer timer(ex);
    int accepted = 0, refused = 0, told_lost = 0, unexplained = 0, transient = 0;
    for (std::size_t turn = 0; accepted < iterations; ++turn) {
        const std::string& resource = resources[turn % resources.size()];
        auto [ec, guard] =
            co_await locks.async_lock(resource, lock_options, asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (!is_transient(ec)) {
                std::fprintf(stderr, "lock_worker: %s\n", ec.message().c_str());
                co_return 1;
            }
            ++transient;
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(asio::use_awaitable);
            continue;
        }
        timer.expires_after(std::chrono::milliseconds(3));  // the protected work
        co_await timer.async_wait(asio::use_awaitable);
        auto written = co_await store->async_exec(redis::command(
            "EVAL", fenced_increment, 1, "store:last-token:" + resource, guard.fencing_token()));
        if (written.as_integer() >= 0) {
            ++accepted;
        } else {
            ++refused;
            timer.expires_after(2 * lock_options.lease);
            auto [which, lost_ec, timer_ec] =
                co_await asio::experimental::make_parallel_group(
                    guard.async_wait_lost(asio::deferred), timer.async_wait(asio::deferred))
                    .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
            (void)lost_ec;
            (void)timer_ec;
            if (which[0] == 0 && guard.lost()) {
                ++told_lost;
            } else {
                ++unexplained;
            }
        }
        co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
    }
    std::printf("fenced %d %d %d %d %d\n", accepted, refused, told_lost, unexplained, transient);
    std::fflush(stdout);
    store->close();
    co_return 0;
}

asio::awaitable<int> hold(int port, std::string resource, int lease_ms, bool auto_renew) {
    auto ex = co_await asio::this_coro::executor;
    redis::RedisLockService locks(ex, options_for(port));
    LockOptions options;
    options.wait = std::chrono::seconds(30);
    options.lease = std::chrono::milliseconds(lease_ms);
    options.auto_renew = auto_renew;
    auto guard = co_await locks.async_lock(resource, options);
    std::printf("acquired %llu\n", static_cast<unsigned long long>(guard.fencing_token()));
    std::fflush(stdout);
    co_await guard.async_wait_lost();
    std::printf("lost\n");
    std::fflush(stdout);
    auto [ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
    std::printf("release %s\n", code_name(ec).c_str());
    std::fflush(stdout);
    co_return 0;
}

redis::RedisSemaphoreServiceOptions semaphore_options_for(int port) {
    redis::RedisSemaphoreServiceOptions options;
    options.connection.port = static_cast<std::uint16_t>(port);
    return options;
}

asio::awaitable<int> permits(int port, std::string resource, int iterations, std::size_t limit,
                             std::string file) {
    auto ex = co_await asio::this_coro::executor;
    redis::RedisSemaphoreService semaphores(ex, semaphore_options_for(port));
    std::FILE* out = std::fopen(file.c_str(), "w");
    SemaphoreOptions options;
    options.limit = limit;
    options.wait = std::chrono::seconds(60);
    options.lease = std::chrono::seconds(10);
    asio::steady_timer work(ex);
    for (int i = 0; i < iterations; ++i) {
        const long long asked = monotonic_ns();
        auto guard = co_await semaphores.async_acquire(resource, options);
        const long long start = monotonic_ns();
        work.expires_after(std::chrono::milliseconds(1));
        co_await work.async_wait(asio::use_awaitable);
        const long long end = monotonic_ns();
        co_await guard.async_release();
        std::fprintf(out, "%lld %lld %lld\n", asked, start, end);
    }
    std::fclose(out);
    co_return 0;
}

asio::awaitable<int> permit_hold(int port, std::string resource, std::size_t limit,
                                 std::size_t count, int lease_ms, bool auto_renew) {
    auto ex = co_await asio::this_coro::executor;
    redis::RedisSemaphoreService semaphores(ex, semaphore_options_for(port));
    SemaphoreOptions options;
    options.limit = limit;
    options.permits = count;
    options.wait = std::chrono::seconds(30);
    options.lease = std::chrono::milliseconds(lease_ms);
    options.auto_renew = auto_renew;
    auto guard = co_await semaphores.async_acquire(resource, options);
    std::printf("acquired\n");
    std::fflush(stdout);
    co_await guard.async_wait_lost();
    std::printf("lost\n");
    std::fflush(stdout);
    auto [ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
    std::printf("release %s\n", code_name(ec).c_str());
    std::fflush(stdout);
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    logger()->set_level(std::getenv("KEYEDPOOL_TEST_LOG") ? spdlog::level::debug
                                                          : spdlog::level::off);
    if (argc < 2) {
        return 2;
    }
    const std::string mode = argv[1];
    asio::io_context io;
    int status = 2;
    auto done = [&](std::exception_ptr e, int result) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::fprintf(stderr, "lock_worker: %s\n", ex.what());
            }
            status = 1;
        } else {
            status = result;
        }
    };
    if (mode == "counter" && argc == 6) {
        asio::co_spawn(io, counter(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), argv[5]), done);
    } else if (mode == "fenced" && argc == 6) {
        asio::co_spawn(io, fenced(argv[2], std::stoi(argv[3]), argv[4], std::stoi(argv[5])), done);
    } else if (mode == "hold" && argc == 6) {
        asio::co_spawn(
            io, hold(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), argv[5] == std::string("1")),
            done);
    } else if (mode == "permits" && argc == 7) {
        asio::co_spawn(
            io,
            permits(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), std::stoul(argv[5]), argv[6]),
            done);
    } else if (mode == "permit-hold" && argc == 8) {
        asio::co_spawn(
            io,
            permit_hold(std::stoi(argv[2]), argv[3], std::stoul(argv[4]), std::stoul(argv[5]),
                        std::stoi(argv[6]), argv[7] == std::string("1")),
            done);
    } else {
        return 2;
    }
    io.run();
    return status;
}
