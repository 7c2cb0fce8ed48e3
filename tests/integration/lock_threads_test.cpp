// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Both lock backends on a 2-thread thread_pool (run under ThreadSanitizer in CI): contenders on
// both threads increment a plain counter under the lock; the count is exact.
#include "quiet_logger.hpp"
#include "redis_server.hpp"

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/logging.hpp>
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

}  // namespace
}  // namespace keyedpool::test
