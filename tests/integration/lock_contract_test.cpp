// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// One contract, two backends: every test here runs on LocalLockService and on RedisLockService
// (against a real redis-server started for the suite).
#include "contract_suite.hpp"

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/retry.hpp>
#include <keyedpool/with_lock.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct LocalBackend {
    static constexpr const char* name = "Local";
    static constexpr Needs needs = Needs::nothing;
    static std::unique_ptr<LockService> make(asio::io_context& io) {
        return std::make_unique<LocalLockService>(io.get_executor());
    }
};

struct RedisBackend {
    static constexpr const char* name = "Redis";
    static constexpr Needs needs = Needs::redis_server;
    static std::unique_ptr<LockService> make(asio::io_context& io);
};

struct ClusterBackend {
    static constexpr const char* name = "RedisCluster";
    static constexpr Needs needs = Needs::redis_cluster;
    static std::unique_ptr<LockService> make(asio::io_context& io);
};

template <typename Backend>
class LockContract : public ContractSuite<Backend, LockService> {
  protected:
    asio::awaitable<std::pair<error_code, LockGuard>> try_lock(clock::duration lease) {
        auto [ec, guard] = co_await this->service_->async_try_lock(
            this->resource_, lease, asio::as_tuple(asio::use_awaitable));
        co_return std::pair{ec, std::move(guard)};
    }

    asio::awaitable<std::pair<error_code, LockGuard>> lock(LockOptions options) {
        auto [ec, guard] = co_await this->service_->async_lock(this->resource_, options,
                                                               asio::as_tuple(asio::use_awaitable));
        co_return std::pair{ec, std::move(guard)};
    }
};

std::unique_ptr<LockService> RedisBackend::make(asio::io_context& io) {
    redis::RedisLockServiceOptions options;
    options.connection = LockContract<RedisBackend>::redis_server().config();
    options.recheck_interval = 5s;  // so a prompt wake-up can only come from pub/sub
    return std::make_unique<redis::RedisLockService>(io.get_executor(), options);
}

std::unique_ptr<LockService> ClusterBackend::make(asio::io_context& io) {
    redis::RedisLockServiceOptions options;
    options.cluster = LockContract<ClusterBackend>::redis_cluster().config();
    options.recheck_interval = 5s;  // a prompt hand-over can only come from sharded pub/sub
    return std::make_unique<redis::RedisLockService>(io.get_executor(), options);
}

using Backends = ::testing::Types<LocalBackend, RedisBackend, ClusterBackend>;
TYPED_TEST_SUITE(LockContract, Backends, BackendNames);

TYPED_TEST(LockContract, TryLockIsExclusiveAndReleaseFreesIt) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec1, first] = co_await this->try_lock(10s);
        EXPECT_FALSE(ec1);
        EXPECT_TRUE(first.owns_lock());
        EXPECT_EQ(first.resource(), this->resource_);
        auto [ec2, second] = co_await this->try_lock(10s);
        EXPECT_EQ(ec2, ResultCode::lock_busy);
        EXPECT_FALSE(second.owns_lock());
        auto [release_ec] = co_await first.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(release_ec);
        auto [ec3, third] = co_await this->try_lock(10s);
        EXPECT_FALSE(ec3);
        co_await third.async_release();
    });
}

TYPED_TEST(LockContract, FencingTokensStrictlyIncrease) {
    this->run([&]() -> asio::awaitable<void> {
        std::uint64_t previous = 0;
        for (int i = 0; i < 5; ++i) {
            auto [ec, guard] = co_await this->try_lock(10s);
            EXPECT_FALSE(ec);
            EXPECT_GT(guard.fencing_token(), previous);
            previous = guard.fencing_token();
            co_await guard.async_release();
        }
    });
}

TYPED_TEST(LockContract, AWaiterIsWokenPromptlyOnRelease) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_lock(30s);
        EXPECT_FALSE(ec);
        clock::time_point released_at{}, acquired_at{};
        bool acquired = false;
        LockOptions options;
        options.wait = 20s;
        options.lease = 10s;
        this->service_->async_lock(this->resource_, options, [&](error_code e, LockGuard g) {
            EXPECT_FALSE(e);
            acquired_at = clock::now();
            acquired = true;
            g.async_release(asio::detached);
        });
        co_await this->sleep(150ms);  // the waiter is subscribed and sleeping
        EXPECT_FALSE(acquired);
        released_at = clock::now();
        co_await holder.async_release();
        while (!acquired) {
            co_await this->sleep(5ms);
        }
        // Far below the 5 s fallback re-check: the release woke it.
        EXPECT_LT(acquired_at - released_at, 1s);
    });
}

TYPED_TEST(LockContract, WaitingEndsWithLockTimeout) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_lock(30s);
        LockOptions options;
        options.wait = 100ms;
        const auto start = clock::now();
        auto [timeout_ec, none] = co_await this->lock(options);
        EXPECT_EQ(timeout_ec, ResultCode::lock_timeout);
        EXPECT_GE(clock::now() - start, 100ms);
        EXPECT_LT(clock::now() - start, 3s);
        EXPECT_FALSE(none.owns_lock());
        co_await holder.async_release();
    });
}

// A holder whose lease ran out: the lock passes on, the old holder learns it lost the lock, and it
// can neither release nor extend the new holder's lock; its fencing token is lower.
TYPED_TEST(LockContract, LeaseEndsTheLockAndTheStaleHolderCannotTouchIt) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec1, stale] = co_await this->try_lock(100ms);
        EXPECT_FALSE(ec1);
        auto [busy, none] = co_await this->try_lock(10s);
        EXPECT_EQ(busy, ResultCode::lock_busy);
        LockOptions options;
        options.wait = 5s;
        options.lease = 10s;
        auto [ec2, fresh] = co_await this->lock(options);  // after the 100 ms lease
        EXPECT_FALSE(ec2);
        EXPECT_GT(fresh.fencing_token(), stale.fencing_token());
        co_await this->sleep(20ms);
        EXPECT_TRUE(stale.lost());
        EXPECT_FALSE(stale.owns_lock());
        auto [stale_release] = co_await stale.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(stale_release, ResultCode::lock_lost);
        auto [still_busy, none2] = co_await this->try_lock(10s);
        EXPECT_EQ(still_busy, ResultCode::lock_busy) << "the stale holder released the new lock";
        EXPECT_TRUE(fresh.owns_lock());
        auto [fresh_release] = co_await fresh.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(fresh_release);
    });
}

TYPED_TEST(LockContract, WatchdogKeepsTheLockThroughSeveralLeases) {
    this->run([&]() -> asio::awaitable<void> {
        LockOptions options;
        options.lease = 150ms;
        options.auto_renew = true;
        auto [ec, guard] = co_await this->lock(options);
        EXPECT_FALSE(ec);
        for (int i = 0; i < 6; ++i) {  // 600 ms: four leases
            co_await this->sleep(100ms);
            auto [busy, none] = co_await this->try_lock(10s);
            EXPECT_EQ(busy, ResultCode::lock_busy) << "lost after " << (i + 1) * 100 << " ms";
        }
        EXPECT_FALSE(guard.lost());
        auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(release_ec);
    });
}

TYPED_TEST(LockContract, TheHolderIsToldWhenTheLockIsLost) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, guard] = co_await this->try_lock(80ms);
        EXPECT_FALSE(ec);
        // Work bound to the lost slot is cancelled when the lease ends.
        asio::steady_timer work(co_await asio::this_coro::executor, 10s);
        error_code work_ec;
        bool work_done = false;
        work.async_wait(asio::bind_cancellation_slot(guard.lost_slot(), [&](error_code e) {
            work_ec = e;
            work_done = true;
        }));
        auto [lost_ec] = co_await guard.async_wait_lost(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(lost_ec);
        EXPECT_TRUE(guard.lost());
        co_await this->sleep(5ms);
        EXPECT_TRUE(work_done);
        EXPECT_EQ(work_ec, asio::error::operation_aborted);
    });
}

TYPED_TEST(LockContract, WithLockReleasesAndRethrows) {
    this->run([&]() -> asio::awaitable<void> {
        LockOptions options;
        options.lease = 10s;
        int value = co_await with_lock(*this->service_, this->resource_, options,
                                       [&](const LockGuard& guard) -> asio::awaitable<int> {
                                           EXPECT_TRUE(guard.owns_lock());
                                           co_return 42;
                                       });
        EXPECT_EQ(value, 42);
        bool thrown = false;
        try {
            co_await with_lock(*this->service_, this->resource_, options,
                               []() -> asio::awaitable<void> {
                                   throw std::runtime_error("the protected work failed");
                                   co_return;
                               });
        } catch (const std::runtime_error&) {
            thrown = true;
        }
        EXPECT_TRUE(thrown);
        auto [ec, free_again] = co_await this->try_lock(10s);
        EXPECT_FALSE(ec) << "with_lock did not release";
        co_await free_again.async_release();
    });
}

TYPED_TEST(LockContract, WithLockCancelsTheWorkWhenTheLockIsLost) {
    this->run([&]() -> asio::awaitable<void> {
        LockOptions options;
        options.lease = 80ms;  // no renewal: lost after 80 ms
        bool work_cancelled = false;
        error_code thrown;
        const auto start = clock::now();
        try {
            co_await with_lock(
                *this->service_, this->resource_, options, [&]() -> asio::awaitable<void> {
                    asio::steady_timer t(co_await asio::this_coro::executor, 10s);
                    auto [e] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
                    work_cancelled = e == asio::error::operation_aborted;
                });
        } catch (const boost::system::system_error& e) {
            thrown = e.code();
        }
        EXPECT_EQ(thrown, ResultCode::lock_lost);
        EXPECT_TRUE(work_cancelled);
        EXPECT_LT(clock::now() - start, 5s);
    });
}

TYPED_TEST(LockContract, BadInputIsATypedError) {
    this->run([&]() -> asio::awaitable<void> {
        auto expect_invalid = [&](std::string resource, clock::duration lease,
                                  clock::duration wait) -> asio::awaitable<void> {
            LockOptions options;
            options.lease = lease;
            options.wait = wait;
            auto [ec, guard] = co_await this->service_->async_lock(
                std::move(resource), options, asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(ec, ResultCode::invalid_argument);
            EXPECT_FALSE(guard.owns_lock());
        };
        co_await expect_invalid("", 1s, 1s);
        co_await expect_invalid(this->resource_, 0s, 1s);
        co_await expect_invalid(this->resource_, -5s, 1s);
        co_await expect_invalid(this->resource_, 1s, -1s);
        co_await expect_invalid(std::string(1024 * 1024, 'r'), 1s, 1s);
        auto [ec, guard] =
            co_await this->service_->async_try_lock("", 1s, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::invalid_argument);
        // Releasing an empty guard is a typed error too.
        LockGuard empty;
        auto [release_ec] = co_await empty.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(release_ec, ResultCode::invalid_argument);
    });
}

TYPED_TEST(LockContract, AForgottenGuardIsReleasedInTheBackground) {
    this->run([&]() -> asio::awaitable<void> {
        {
            auto [ec, forgotten] = co_await this->try_lock(30s);
            EXPECT_FALSE(ec);
        }  // destroyed without release
        LockOptions options;
        options.wait = 2s;
        options.lease = 10s;
        auto [ec, guard] = co_await this->lock(options);
        EXPECT_FALSE(ec) << "the forgotten lock was not released (it has a 30 s lease)";
        co_await guard.async_release();
    });
}

TYPED_TEST(LockContract, ADetachedLockIsHeldUntilItsLeaseEnds) {
    this->run([&]() -> asio::awaitable<void> {
        {
            auto [ec, guard] = co_await this->try_lock(300ms);
            EXPECT_FALSE(ec);
            guard.detach();
            EXPECT_FALSE(guard.owns_lock());
        }  // the (empty) guard's destructor must not release it either
        co_await this->sleep(50ms);
        auto [busy, none] = co_await this->try_lock(10s);
        EXPECT_EQ(busy, ResultCode::lock_busy) << "detach released the lock";
        co_await this->sleep(350ms);
        auto [ec2, after] = co_await this->try_lock(10s);
        EXPECT_FALSE(ec2) << "the lease did not end the detached lock";
        co_await after.async_release();
    });
}

TEST(LocalLockService, DetachedLocksAreForgottenWhenTheirLeaseEnds) {
    asio::io_context io;
    LocalLockService locks(io.get_executor());
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        // 100 dedupe windows on distinct orders; the lease is long enough that none ends while
        // the loop runs, even under sanitizers.
        for (int i = 0; i < 100; ++i) {
            auto guard = co_await locks.async_try_lock("order:" + std::to_string(i), 500ms);
            guard.detach();
        }
        EXPECT_EQ(locks.held(), 100u);
        asio::steady_timer t(io, 700ms);
        co_await t.async_wait(asio::use_awaitable);
        EXPECT_EQ(locks.held(), 0u) << "ended leases leave entries behind";
    });
}

TYPED_TEST(LockContract, CancellingAWaiterLeavesNothingHeld) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_lock(30s);
        asio::cancellation_signal cancel;
        error_code waiter_ec;
        bool waiter_done = false;
        LockOptions options;
        options.wait = 20s;
        this->service_->async_lock(
            this->resource_, options,
            asio::bind_cancellation_slot(cancel.slot(), [&](error_code e, LockGuard g) {
                waiter_ec = e;
                waiter_done = true;
                EXPECT_FALSE(g.owns_lock());
            }));
        co_await this->sleep(50ms);
        cancel.emit(asio::cancellation_type::terminal);
        while (!waiter_done) {
            co_await this->sleep(5ms);
        }
        EXPECT_EQ(waiter_ec, asio::error::operation_aborted);
        co_await holder.async_release();
        auto [ec2, again] = co_await this->try_lock(10s);
        EXPECT_FALSE(ec2) << "the cancelled waiter left the lock held";
        co_await again.async_release();
    });
}

// Many coroutines increment a plain counter with a suspension inside the critical section: the
// count is exact and no two critical sections overlap.
TYPED_TEST(LockContract, ContendersNeverOverlap) {
    this->run([&]() -> asio::awaitable<void> {
        int counter = 0;
        int inside = 0;
        int max_inside = 0;
        int finished = 0;
        for (int worker = 0; worker < 8; ++worker) {
            asio::co_spawn(
                co_await asio::this_coro::executor,
                [&]() -> asio::awaitable<void> {
                    LockOptions options;
                    options.wait = 20s;
                    options.lease = 10s;
                    for (int i = 0; i < 20; ++i) {
                        co_await with_lock(*this->service_, this->resource_, options,
                                           [&]() -> asio::awaitable<void> {
                                               ++inside;
                                               max_inside = std::max(max_inside, inside);
                                               const int seen = counter;
                                               co_await this->sleep(1ms);
                                               counter = seen + 1;
                                               --inside;
                                           });
                    }
                    ++finished;
                },
                asio::detached);
        }
        while (finished < 8) {
            co_await this->sleep(10ms);
        }
        EXPECT_EQ(counter, 160);
        EXPECT_EQ(max_inside, 1);
    });
}

}  // namespace
}  // namespace keyedpool::test
