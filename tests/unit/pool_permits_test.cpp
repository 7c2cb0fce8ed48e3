// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// KeyedClientPool with a permit source, on virtual time: a build takes its client's permits
// before the factory call, the client holds them while cached and gives them back when closed
// (invalidated, evicted, replaced, at shutdown); a build that finds none within wait_timeout
// fails with pool_exhausted; a failing permit service fails the get (fail closed) or is skipped
// and counted (fail open). The permit service is LocalSemaphoreService on the same virtual clock;
// a fake service stands in only where the service itself must fail.
#include "fake_client.hpp"
#include "virtual_io.hpp"

#include <keyedpool/local_semaphore_service.hpp>
#include <keyedpool/permit_source.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

using boost::system::error_code;

/// A permit service that is down: every acquisition completes with `failure`.
class FailingSemaphoreService final : public SemaphoreService {
  public:
    FailingSemaphoreService(asio::any_io_executor ex, error_code failure)
        : executor_(std::move(ex)), failure_(failure) {}
    int calls = 0;

  private:
    void acquire_erased(std::string, SemaphoreOptions, bool, LockDiagnostics*,
                        PermitHandler handler) override {
        ++calls;
        asio::post(executor_, [h = std::move(handler), ec = failure_]() mutable {
            std::move(h)(ec, PermitGuard{});
        });
    }
    asio::any_io_executor executor_;
    error_code failure_;
};

class PoolPermitsTest : public ::testing::Test {
  protected:
    PoolPermitsTest() {
        LocalSemaphoreServiceOptions o;
        o.time = TimeSource::from_traits<VirtualTimeTraits>();
        local_ = std::make_shared<LocalSemaphoreService>(io_.get_executor(), o);
    }

    void TearDown() override {
        if (pool_) {
            bool done = false;
            pool_->async_shutdown([&](error_code) { done = true; });
            vio_.drain(std::chrono::hours(1));
            EXPECT_TRUE(done);
            EXPECT_EQ(pool_->stats().builds, pool_->stats().closes);
        }
        EXPECT_TRUE(vio_.drain(std::chrono::hours(1))) << "a timer is still pending";
        EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
        EXPECT_EQ(local_->in_use("server"), 0u) << "permits outlived the pool's clients";
        EXPECT_EQ(local_->resources(), 0u);
    }

    /// Every key's client costs `permits` of the "server" budget of `limit`.
    PermitSource<int> source(std::size_t limit, std::size_t permits = 1) {
        PermitSource<int> s;
        s.service = local_;
        s.permit_for = [limit, permits](const int&) {
            return ClientPermit{"server", limit, permits};
        };
        s.lease = 30s;
        return s;
    }

    VirtualPool& make_pool(PermitSource<int> permits, PoolOptions options = {}) {
        pool_ = std::make_unique<VirtualPool>(io_.get_executor(),
                                              make_factory<VirtualTimer>(counters_, behaviour_),
                                              options, std::move(permits));
        return *pool_;
    }

    void start_get(int key, GetOutcome& out, asio::cancellation_slot slot = {}) {
        pool_->async_get(key,
                         asio::bind_cancellation_slot(slot, [&out](error_code ec, ClientPtr c) {
                             out.done = true;
                             out.ec = ec;
                             out.client = std::move(c);
                         }));
    }
    /// Gets `key` and lets its build finish (the fake factory takes 1 ms).
    GetOutcome get(int key) {
        GetOutcome out;
        start_get(key, out);
        vio_.run();
        vio_.advance(1ms);
        return out;
    }

    QuietLogger quiet_;
    VirtualIo vio_;
    asio::io_context& io_ = vio_.context();
    Counters counters_;
    FactoryBehaviour behaviour_;
    std::shared_ptr<LocalSemaphoreService> local_;
    std::unique_ptr<VirtualPool> pool_;
};

TEST_F(PoolPermitsTest, CachedClientsHoldTheirPermitsAndABuildWithoutOneIsPoolExhausted) {
    PoolOptions options;
    options.wait_timeout = 1s;
    make_pool(source(2), options);
    EXPECT_FALSE(get(1).ec);
    EXPECT_FALSE(get(2).ec);
    EXPECT_EQ(local_->in_use("server"), 2u) << "each cached client holds its permit";
    GetOutcome third;
    start_get(3, third);
    vio_.run();
    vio_.advance(999ms);
    EXPECT_FALSE(third.done) << "gave up before wait_timeout";
    vio_.advance(1ms);
    ASSERT_TRUE(third.done);
    EXPECT_EQ(third.ec, ResultCode::pool_exhausted);
    EXPECT_EQ(counters_.factory_calls.load(), 2) << "a client was built without a permit";
    EXPECT_FALSE(get(1).ec) << "a hit needs no permit";
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

TEST_F(PoolPermitsTest, AWaitingBuildGetsThePermitOfAClientThatIsClosed) {
    make_pool(source(2));
    EXPECT_FALSE(get(1).ec);
    EXPECT_FALSE(get(2).ec);
    GetOutcome third;
    start_get(3, third);
    vio_.run();
    vio_.advance(100ms);
    EXPECT_FALSE(third.done);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_TRUE(pool_->invalidate(1));
    vio_.run();
    vio_.advance(1ms);
    ASSERT_TRUE(third.done);
    EXPECT_FALSE(third.ec) << third.ec.message();
    EXPECT_EQ(local_->in_use("server"), 2u);
}

TEST_F(PoolPermitsTest, IdleEvictionGivesThePermitBack) {
    PoolOptions options;
    options.idle_timeout = 10s;
    make_pool(source(1), options);
    EXPECT_FALSE(get(1).ec);
    EXPECT_EQ(local_->in_use("server"), 1u);
    vio_.advance(16s);
    EXPECT_EQ(pool_->stats().evictions, 1u);
    EXPECT_EQ(local_->in_use("server"), 0u) << "an evicted client kept its permit";
    EXPECT_FALSE(get(2).ec);
}

TEST_F(PoolPermitsTest, AClientCostsItsWeight) {
    PoolOptions options;
    options.wait_timeout = 0s;
    make_pool(source(3, 2), options);
    EXPECT_FALSE(get(1).ec);
    EXPECT_EQ(local_->in_use("server"), 2u);
    EXPECT_EQ(get(2).ec, ResultCode::pool_exhausted) << "two clients of weight 2 fit in 3";
}

TEST_F(PoolPermitsTest, AGetCancelledWhileItsBuildWaitsForAPermitTakesNone) {
    make_pool(source(1));
    EXPECT_FALSE(get(1).ec);
    asio::cancellation_signal cancel;
    GetOutcome waiting;
    start_get(2, waiting, cancel.slot());
    vio_.run();
    vio_.advance(10ms);
    cancel.emit(asio::cancellation_type::terminal);
    vio_.run();
    ASSERT_TRUE(waiting.done);
    EXPECT_EQ(waiting.ec, asio::error::operation_aborted);
    EXPECT_TRUE(pool_->invalidate(1));
    vio_.run();
    vio_.advance(1ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "the abandoned build went on";
    EXPECT_EQ(local_->in_use("server"), 0u) << "the abandoned build took the freed permit";
}

TEST_F(PoolPermitsTest, ShutdownGivesEveryPermitBack) {
    make_pool(source(4));
    for (int key = 1; key <= 4; ++key) {
        EXPECT_FALSE(get(key).ec);
    }
    EXPECT_EQ(local_->in_use("server"), 4u);
    // TearDown shuts the pool down and checks nothing is held.
}

TEST_F(PoolPermitsTest, PoolsOfOneServiceShareTheBudget) {
    PoolOptions options;
    options.wait_timeout = 0s;
    make_pool(source(2), options);
    Counters other_counters;
    VirtualPool other(io_.get_executor(), make_factory<VirtualTimer>(other_counters, behaviour_),
                      options, source(2));
    EXPECT_FALSE(get(1).ec);
    GetOutcome b, c;
    other.async_get(7, [&](error_code ec, ClientPtr client) {
        b = GetOutcome{true, ec, std::move(client)};
    });
    vio_.run();
    vio_.advance(1ms);
    other.async_get(8, [&](error_code ec, ClientPtr client) {
        c = GetOutcome{true, ec, std::move(client)};
    });
    vio_.run();
    vio_.advance(1ms);
    EXPECT_FALSE(b.ec);
    EXPECT_EQ(c.ec, ResultCode::pool_exhausted) << "the second pool ignored the first's clients";
    b.client.reset();
    bool done = false;
    other.async_shutdown([&](error_code) { done = true; });
    vio_.drain(std::chrono::hours(1));
    EXPECT_TRUE(done);
    EXPECT_EQ(other_counters.constructed.load(), other_counters.closed.load());
}

TEST_F(PoolPermitsTest, AFailingPermitServiceFailsTheGetWhenClosed) {
    auto down =
        std::make_shared<FailingSemaphoreService>(io_.get_executor(), ResultCode::connect_failed);
    auto s = source(2);
    s.service = down;
    make_pool(s);
    auto out = get(1);
    EXPECT_EQ(out.ec, ResultCode::connect_failed) << "the service's typed error, not another";
    EXPECT_EQ(down->calls, 1);
    EXPECT_EQ(counters_.factory_calls.load(), 0) << "built without a permit while failing closed";
    EXPECT_EQ(pool_->stats().builds_without_permit, 0u);
}

TEST_F(PoolPermitsTest, AFailingPermitServiceIsSkippedAndCountedWhenOpen) {
    auto down = std::make_shared<FailingSemaphoreService>(io_.get_executor(), ResultCode::timeout);
    auto s = source(2);
    s.service = down;
    s.when_service_fails = PermitServiceDown::fail_open;
    make_pool(s);
    auto out = get(1);
    EXPECT_FALSE(out.ec) << out.ec.message();
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(pool_->stats().builds_without_permit, 1u);
}

TEST_F(PoolPermitsTest, AnImpossibleOrThrowingPermitRequestIsInvalidArgument) {
    auto s = source(2);
    s.permit_for = [](const int& key) -> ClientPermit {
        if (key == 1) {
            throw std::runtime_error("no such server");
        }
        return ClientPermit{"server", 1, 2};  // more than the limit
    };
    s.when_service_fails = PermitServiceDown::fail_open;  // a configuration error never fails open
    make_pool(s);
    EXPECT_EQ(get(1).ec, ResultCode::invalid_argument);
    EXPECT_EQ(get(2).ec, ResultCode::invalid_argument);
    EXPECT_EQ(counters_.factory_calls.load(), 0);
}

TEST_F(PoolPermitsTest, AnInvalidPermitSourceThrowsNamingTheField) {
    auto expect_field = [&](PermitSource<int> s, const std::string& field) {
        try {
            make_pool(std::move(s));
            ADD_FAILURE() << "accepted an invalid " << field;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
        }
    };
    auto s = source(1);
    s.service = nullptr;
    expect_field(s, "PermitSource.service");
    s = source(1);
    s.permit_for = nullptr;
    expect_field(s, "PermitSource.permit_for");
    s = source(1);
    s.lease = 0s;
    expect_field(s, "PermitSource.lease");
    pool_.reset();
}

}  // namespace
}  // namespace keyedpool::test
