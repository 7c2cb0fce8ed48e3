// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// One semaphore contract, two backends: every test here runs on LocalSemaphoreService and on
// RedisSemaphoreService (against a real redis-server started for the suite). The Redis service
// re-checks only every 5 s, so a prompt hand-over can only come from its pub/sub message.
#include "contract_suite.hpp"

#include <keyedpool/local_semaphore_service.hpp>
#include <keyedpool/redis/semaphore_service.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

SemaphoreOptions of(std::size_t limit, std::size_t permits = 1, clock::duration wait = 10s,
                    clock::duration lease = 30s) {
    SemaphoreOptions o;
    o.limit = limit;
    o.permits = permits;
    o.wait = wait;
    o.lease = lease;
    return o;
}

/// An acquisition started in the background, watched by the test.
struct Pending {
    bool done = false;
    error_code ec;
    PermitGuard guard;
    clock::time_point at{};
};

struct LocalBackend {
    static constexpr const char* name = "Local";
    static constexpr Needs needs = Needs::nothing;
    static std::unique_ptr<SemaphoreService> make(asio::io_context& io) {
        return std::make_unique<LocalSemaphoreService>(io.get_executor());
    }
};

struct RedisBackend {
    static constexpr const char* name = "Redis";
    static constexpr Needs needs = Needs::redis_server;
    static std::unique_ptr<SemaphoreService> make(asio::io_context& io);
};

struct ClusterBackend {
    static constexpr const char* name = "RedisCluster";
    static constexpr Needs needs = Needs::redis_cluster;
    static std::unique_ptr<SemaphoreService> make(asio::io_context& io);
};

template <typename Backend>
class SemaphoreContract : public ContractSuite<Backend, SemaphoreService> {
  protected:
    asio::awaitable<std::pair<error_code, PermitGuard>> try_acquire(SemaphoreOptions options) {
        auto [ec, guard] = co_await this->service_->async_try_acquire(
            this->resource_, options, asio::as_tuple(asio::use_awaitable));
        co_return std::pair{ec, std::move(guard)};
    }
    asio::awaitable<std::pair<error_code, PermitGuard>> acquire(SemaphoreOptions options) {
        auto [ec, guard] = co_await this->service_->async_acquire(
            this->resource_, options, asio::as_tuple(asio::use_awaitable));
        co_return std::pair{ec, std::move(guard)};
    }
    /// Starts an acquisition in the background; `out` records how it ended.
    void start(SemaphoreOptions options, Pending& out, asio::cancellation_slot slot = {}) {
        this->service_->async_acquire(
            this->resource_, options,
            asio::bind_cancellation_slot(slot, [&out](error_code ec, PermitGuard g) {
                out.done = true;
                out.ec = ec;
                out.guard = std::move(g);
                out.at = clock::now();
            }));
    }
    /// Waits until `p` is done or `limit` passed.
    asio::awaitable<void> until_done(const Pending& p, clock::duration limit = 3s) {
        const auto end = clock::now() + limit;
        while (!p.done && clock::now() < end) {
            co_await this->sleep(1ms);
        }
    }
    static asio::awaitable<error_code> release(PermitGuard& guard) {
        auto [ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        co_return ec;
    }
};

std::unique_ptr<SemaphoreService> RedisBackend::make(asio::io_context& io) {
    redis::RedisSemaphoreServiceOptions options;
    options.connection = SemaphoreContract<RedisBackend>::redis_server().config();
    options.recheck_interval = 5s;  // a prompt hand-over can only come from pub/sub
    return std::make_unique<redis::RedisSemaphoreService>(io.get_executor(), options);
}

std::unique_ptr<SemaphoreService> ClusterBackend::make(asio::io_context& io) {
    redis::RedisSemaphoreServiceOptions options;
    options.cluster = SemaphoreContract<ClusterBackend>::redis_cluster().config();
    options.recheck_interval = 5s;  // a prompt hand-over can only come from sharded pub/sub
    return std::make_unique<redis::RedisSemaphoreService>(io.get_executor(), options);
}

using Backends = ::testing::Types<LocalBackend, RedisBackend, ClusterBackend>;
TYPED_TEST_SUITE(SemaphoreContract, Backends, BackendNames);

TYPED_TEST(SemaphoreContract, NeverMoreThanTheLimitAndAHolderOfTwoCountsTwice) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec1, two] = co_await this->try_acquire(of(3, 2));
        auto [ec2, one] = co_await this->try_acquire(of(3, 1));
        EXPECT_FALSE(ec1);
        EXPECT_FALSE(ec2);
        EXPECT_EQ(two.permits(), 2u);
        EXPECT_TRUE(two.owns_permits() && one.owns_permits());
        auto [busy, none] = co_await this->try_acquire(of(3, 1));
        EXPECT_EQ(busy, ResultCode::lock_busy) << "a fourth permit of 3 was handed out";
        EXPECT_FALSE(none.owns_permits());
        EXPECT_FALSE(co_await this->release(two));
        auto [ec3, a] = co_await this->try_acquire(of(3, 1));
        auto [ec4, b] = co_await this->try_acquire(of(3, 1));
        EXPECT_FALSE(ec3) << "the holder of two gave back two";
        EXPECT_FALSE(ec4) << "the holder of two gave back two";
        auto [busy2, none2] = co_await this->try_acquire(of(3, 1));
        EXPECT_EQ(busy2, ResultCode::lock_busy);
    });
}

TYPED_TEST(SemaphoreContract, WaitersAreServedFirstComeFirstServedByWeight) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_acquire(of(3, 2));
        EXPECT_FALSE(ec);
        Pending heavy, light;
        this->start(of(3, 2), heavy);  // needs 2, 1 free
        co_await this->sleep(50ms);
        this->start(of(3, 1), light);  // 1 free, but the heavy waiter came first
        co_await this->sleep(100ms);
        EXPECT_FALSE(heavy.done);
        EXPECT_FALSE(light.done) << "a lighter waiter overtook the heavy one ahead of it";
        const auto released_at = clock::now();
        EXPECT_FALSE(co_await this->release(holder));
        co_await this->until_done(light);
        co_await this->until_done(heavy);
        EXPECT_TRUE(heavy.done && !heavy.ec) << heavy.ec.message();
        EXPECT_TRUE(light.done && !light.ec) << light.ec.message();
        EXPECT_LT(heavy.at - released_at, 2s) << "one release did not hand over promptly";
        EXPECT_LT(light.at - released_at, 2s) << "one release did not wake every waiter that fits";
        auto [busy, none] = co_await this->try_acquire(of(3, 1));
        EXPECT_EQ(busy, ResultCode::lock_busy);
    });
}

TYPED_TEST(SemaphoreContract, AWaitEndsWithLockTimeoutAndTheWaiterLeavesTheLine) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_acquire(of(1));
        EXPECT_FALSE(ec);
        auto [timed_out, none] = co_await this->acquire(of(1, 1, 100ms));
        EXPECT_EQ(timed_out, ResultCode::lock_timeout);
        Pending next;
        this->start(of(1), next);
        co_await this->sleep(50ms);
        const auto released_at = clock::now();
        EXPECT_FALSE(co_await this->release(holder));
        co_await this->until_done(next);
        EXPECT_TRUE(next.done && !next.ec) << "the waiter that gave up still blocks the line";
        EXPECT_LT(next.at - released_at, 2s);
    });
}

TYPED_TEST(SemaphoreContract, ACancelledWaiterLeavesAndTheOneBehindIsServed) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, holder] = co_await this->try_acquire(of(2, 2));
        EXPECT_FALSE(ec);
        asio::cancellation_signal cancel;
        Pending cancelled, next;
        this->start(of(2, 2), cancelled, cancel.slot());
        co_await this->sleep(50ms);
        this->start(of(2, 1), next);
        co_await this->sleep(50ms);
        cancel.emit(asio::cancellation_type::terminal);
        co_await this->until_done(cancelled);
        EXPECT_EQ(cancelled.ec, asio::error::operation_aborted);
        EXPECT_FALSE(next.done);
        EXPECT_FALSE(co_await this->release(holder));
        co_await this->until_done(next);
        EXPECT_TRUE(next.done && !next.ec) << next.ec.message();
        auto [ec2, other] = co_await this->try_acquire(of(2, 1));
        EXPECT_FALSE(ec2) << "the cancelled waiter kept permits";
    });
}

TYPED_TEST(SemaphoreContract, AnUnrenewedLeaseGivesThePermitsBackAndTheStaleHolderIsTold) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, stale] = co_await this->try_acquire(of(1, 1, 0s, 100ms));
        EXPECT_FALSE(ec);
        auto [ec2, fresh] = co_await this->acquire(of(1, 1, 5s, 10s));  // after the 100 ms lease
        EXPECT_FALSE(ec2);
        co_await this->sleep(20ms);
        EXPECT_TRUE(stale.lost());
        EXPECT_FALSE(stale.owns_permits());
        EXPECT_EQ(co_await this->release(stale), ResultCode::lock_lost);
        auto [busy, none] = co_await this->try_acquire(of(1));
        EXPECT_EQ(busy, ResultCode::lock_busy) << "the stale holder gave back the new permit";
        EXPECT_FALSE(co_await this->release(fresh));
    });
}

TYPED_TEST(SemaphoreContract, WatchdogKeepsThePermitsThroughSeveralLeases) {
    this->run([&]() -> asio::awaitable<void> {
        auto options = of(1, 1, 1s, 150ms);
        options.auto_renew = true;
        auto [ec, guard] = co_await this->acquire(options);
        EXPECT_FALSE(ec);
        for (int i = 0; i < 6; ++i) {  // 600 ms: four leases
            co_await this->sleep(100ms);
            auto [busy, none] = co_await this->try_acquire(of(1));
            EXPECT_EQ(busy, ResultCode::lock_busy) << "lost after " << (i + 1) * 100 << " ms";
        }
        EXPECT_FALSE(guard.lost());
        EXPECT_FALSE(co_await this->release(guard));
    });
}

TYPED_TEST(SemaphoreContract, ANewLimitCountsForTheAcquisitionsAfterIt) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec1, a] = co_await this->try_acquire(of(2));
        auto [ec2, b] = co_await this->try_acquire(of(2));
        EXPECT_FALSE(ec1 || ec2);
        auto [ec3, c] = co_await this->try_acquire(of(3));
        EXPECT_FALSE(ec3) << "a raised limit was not honoured";
        auto [busy, none] = co_await this->try_acquire(of(1));
        EXPECT_EQ(busy, ResultCode::lock_busy) << "a lowered limit was not honoured";
        EXPECT_TRUE(a.owns_permits() && b.owns_permits() && c.owns_permits())
            << "lowering the limit took permits from their holders";
    });
}

TYPED_TEST(SemaphoreContract, BadInputIsATypedErrorAndTakesNothing) {
    this->run([&]() -> asio::awaitable<void> {
        const std::vector<std::pair<const char*, SemaphoreOptions>> bad{
            {"limit 0", of(0, 1)},
            {"permits 0", of(3, 0)},
            {"permits above the limit", of(2, 3)},
            {"lease 0", of(2, 1, 1s, 0s)},
            {"negative wait", of(2, 1, -1s)},
        };
        for (const auto& [what, options] : bad) {
            auto [ec, guard] = co_await this->acquire(options);
            EXPECT_EQ(ec, ResultCode::invalid_argument) << what;
            EXPECT_FALSE(guard.owns_permits()) << what;
        }
        for (const std::string& resource : {std::string(), std::string(5000, 'r')}) {
            auto [ec, guard] = co_await this->service_->async_acquire(
                resource, of(2), asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(ec, ResultCode::invalid_argument) << resource.size() << " bytes";
        }
        auto [ec, all] = co_await this->try_acquire(of(2, 2));
        EXPECT_FALSE(ec) << "a refused request took permits";
    });
}

TYPED_TEST(SemaphoreContract, AForgottenGuardGivesThePermitsBackInTheBackground) {
    this->run([&]() -> asio::awaitable<void> {
        {
            auto [ec, forgotten] = co_await this->try_acquire(of(1));
            EXPECT_FALSE(ec);
        }
        Pending next;
        this->start(of(1, 1, 3s), next);
        co_await this->until_done(next);
        EXPECT_TRUE(next.done && !next.ec) << next.ec.message();
    });
}

TYPED_TEST(SemaphoreContract, ADetachedPermitIsHeldUntilItsLeaseEnds) {
    this->run([&]() -> asio::awaitable<void> {
        auto [ec, guard] = co_await this->try_acquire(of(1, 1, 0s, 200ms));
        EXPECT_FALSE(ec);
        guard.detach();
        EXPECT_EQ(guard.permits(), 0u);
        auto [busy, none] = co_await this->try_acquire(of(1));
        EXPECT_EQ(busy, ResultCode::lock_busy) << "a detached permit was given back";
        auto [ec2, after] = co_await this->acquire(of(1, 1, 3s));
        EXPECT_FALSE(ec2) << "a detached permit outlived its lease";
    });
}

TEST(RedisSemaphoreOptions, InvalidOptionsThrowNamingTheField) {
    asio::io_context io;
    redis::RedisSemaphoreServiceOptions options;
    options.key_prefix = "a{b";
    try {
        redis::RedisSemaphoreService service(io.get_executor(), options);
        ADD_FAILURE() << "accepted a key prefix with a brace";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("RedisSemaphoreServiceOptions.key_prefix"),
                  std::string::npos)
            << e.what();
    }
    options = {};
    options.recheck_interval = 0s;
    EXPECT_THROW(redis::RedisSemaphoreService(io.get_executor(), options), std::invalid_argument);
    EXPECT_EQ(redis::RedisSemaphoreServiceOptions{}.key_prefix, "keyedpool:semaphore:");
}

}  // namespace
}  // namespace keyedpool::test
