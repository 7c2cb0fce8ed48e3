// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A separate OS process for the multi-process lock tests (started by redis_process_test).
//
//   lock_worker counter PORT RESOURCE ITERATIONS INTERVALS_FILE
//       ITERATIONS times: under the lock, GET the counter, SET it + 1, and append the critical
//       section's [start, end] (CLOCK_MONOTONIC ns, comparable across processes) to the file.
//   lock_worker hold PORT RESOURCE LEASE_MS AUTO_RENEW
//       takes the lock, prints "acquired FENCE", waits until the lock is lost, prints "lost", tries
//       to release, prints "release CODE_NAME", and exits.
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/with_lock.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <cstdio>
#include <ctime>
#include <string>

namespace asio = boost::asio;
using namespace keyedpool;

namespace {

long long monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<long long>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
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
    std::printf("release %s\n",
                ec ? std::string(to_string(static_cast<ResultCode>(ec.value()))).c_str() : "ok");
    std::fflush(stdout);
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    logger()->set_level(spdlog::level::off);
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
    } else if (mode == "hold" && argc == 6) {
        asio::co_spawn(
            io, hold(std::stoi(argv[2]), argv[3], std::stoi(argv[4]), argv[5] == std::string("1")),
            done);
    } else {
        return 2;
    }
    io.run();
    return status;
}
