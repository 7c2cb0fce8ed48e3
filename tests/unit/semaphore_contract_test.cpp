// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The SemaphoreService contract, on virtual time: what every backend must do (the in-process
// one here; a fleet-wide backend joins the same suite). Permits are counted by weight, granted
// first come first served, returned by release or by the end of an unrenewed lease.
#include "quiet_logger.hpp"
#include "virtual_io.hpp"

#include <keyedpool/local_semaphore_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

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

class SemaphoreContract : public ::testing::Test {
  protected:
    SemaphoreContract() {
        LocalSemaphoreServiceOptions options;
        options.time = TimeSource::from_traits<VirtualTimeTraits>();
        local_ = std::make_unique<LocalSemaphoreService>(io_.get_executor(), options);
        service_ = local_.get();
    }

    struct Outcome {
        bool done = false;
        error_code ec;
        PermitGuard guard;
    };

    void acquire(const std::string& resource, SemaphoreOptions options, Outcome& out,
                 asio::cancellation_slot slot = {}) {
        service_->async_acquire(
            resource, options,
            asio::bind_cancellation_slot(slot, [&out](error_code ec, PermitGuard g) {
                out = Outcome{true, ec, std::move(g)};
            }));
    }
    void try_acquire(const std::string& resource, SemaphoreOptions options, Outcome& out) {
        service_->async_try_acquire(resource, options, [&out](error_code ec, PermitGuard g) {
            out = Outcome{true, ec, std::move(g)};
        });
    }
    static SemaphoreOptions of(std::size_t limit, std::size_t permits = 1,
                               std::chrono::milliseconds wait = 10s,
                               std::chrono::milliseconds lease = 30s) {
        SemaphoreOptions o;
        o.limit = limit;
        o.permits = permits;
        o.wait = wait;
        o.lease = lease;
        return o;
    }

    void TearDown() override {
        EXPECT_TRUE(io_.drain(1h)) << "a timer is still pending";
        EXPECT_EQ(local_->resources(), 0u) << "a resource's state outlived its last user";
    }

    QuietLogger quiet_;
    VirtualIo io_;
    std::unique_ptr<LocalSemaphoreService> local_;
    SemaphoreService* service_ = nullptr;
};

TEST_F(SemaphoreContract, NeverMoreThanTheLimitAndAHolderOfTwoCountsTwice) {
    Outcome a, b, c, d;
    try_acquire("db", of(3, 2), a);
    try_acquire("db", of(3, 1), b);
    try_acquire("db", of(3, 1), c);
    io_.run();
    ASSERT_FALSE(a.ec);
    ASSERT_FALSE(b.ec);
    EXPECT_EQ(a.guard.permits(), 2u);
    EXPECT_EQ(c.ec, ResultCode::lock_busy) << "a fourth permit of 3 was handed out";
    EXPECT_EQ(local_->in_use("db"), 3u);
    try_acquire("other", of(1), d);
    io_.run();
    EXPECT_FALSE(d.ec) << "resources share permits";
    std::optional<error_code> released;
    a.guard.async_release([&](error_code ec) { released = ec; });
    io_.run();
    ASSERT_TRUE(released);
    EXPECT_FALSE(*released) << released->message();
    EXPECT_EQ(local_->in_use("db"), 1u) << "the holder of two gave back two";
}

TEST_F(SemaphoreContract, WaitersAreServedFirstComeFirstServedByWeight) {
    Outcome holder, heavy, light;
    try_acquire("db", of(3, 2), holder);
    io_.run();
    acquire("db", of(3, 2), heavy);  // needs 2, 1 free
    io_.run();
    acquire("db", of(3, 1), light);  // 1 free, but the heavy waiter came first
    io_.run();
    EXPECT_FALSE(light.done) << "a lighter waiter overtook the heavy one ahead of it";
    holder.guard.async_release([](error_code) {});
    io_.run();
    ASSERT_TRUE(heavy.done && light.done);
    EXPECT_FALSE(heavy.ec);
    EXPECT_FALSE(light.ec);
    EXPECT_EQ(local_->in_use("db"), 3u);
}

TEST_F(SemaphoreContract, AWaitEndsWithLockTimeoutAndACancelledWaiterLeaves) {
    Outcome holder, timed, cancelled, next;
    try_acquire("db", of(1), holder);
    io_.run();
    acquire("db", of(1, 1, 50ms), timed);
    asio::cancellation_signal cancel;
    acquire("db", of(1), cancelled, cancel.slot());
    io_.run();
    io_.advance(49ms);
    EXPECT_FALSE(timed.done);
    io_.advance(1ms);
    ASSERT_TRUE(timed.done);
    EXPECT_EQ(timed.ec, ResultCode::lock_timeout);
    cancel.emit(asio::cancellation_type::terminal);
    io_.run();
    ASSERT_TRUE(cancelled.done);
    EXPECT_EQ(cancelled.ec, asio::error::operation_aborted);
    acquire("db", of(1), next);
    holder.guard.async_release([](error_code) {});
    io_.run();
    ASSERT_TRUE(next.done);
    EXPECT_FALSE(next.ec) << "a waiter that left kept its place";
}

// A holder that neither renews nor releases (a crashed or paused process) loses its permits when
// its lease ends, and the next waiter gets them; it is told.
TEST_F(SemaphoreContract, AnUnrenewedLeaseGivesThePermitsBack) {
    Outcome stale, waiter;
    try_acquire("db", of(1, 1, 0ms, 100ms), stale);
    io_.run();
    ASSERT_FALSE(stale.ec);
    acquire("db", of(1, 1, 10s), waiter);
    io_.run();
    io_.advance(96ms);
    EXPECT_FALSE(waiter.done);
    io_.advance(5ms);
    ASSERT_TRUE(waiter.done);
    EXPECT_FALSE(waiter.ec);
    EXPECT_TRUE(stale.guard.lost());
    std::optional<error_code> released;
    stale.guard.async_release([&](error_code ec) { released = ec; });
    io_.run();
    ASSERT_TRUE(released);
    EXPECT_EQ(*released, ResultCode::lock_lost) << "a stale holder released permits it lost";
    EXPECT_EQ(local_->in_use("db"), 1u);
}

TEST_F(SemaphoreContract, AutoRenewKeepsThePermitsPastTheLease) {
    Outcome holder, other;
    auto options = of(1, 1, 0ms, 100ms);
    options.auto_renew = true;
    try_acquire("db", options, holder);
    io_.run();
    for (int i = 0; i < 10; ++i) {
        io_.advance(50ms);
    }
    EXPECT_TRUE(holder.guard.owns_permits());
    try_acquire("db", of(1), other);
    io_.run();
    EXPECT_EQ(other.ec, ResultCode::lock_busy);
    holder.guard.async_release([](error_code) {});
    io_.run();
}

// The latest limit counts for the acquisitions after it.
TEST_F(SemaphoreContract, ARaisedLimitLetsWaitersInALoweredOneHoldsNothingBack) {
    Outcome a, b, c;
    try_acquire("db", of(1), a);
    io_.run();
    acquire("db", of(1), b);
    io_.run();
    EXPECT_FALSE(b.done);
    try_acquire("db", of(2), c);  // raises the limit to 2: the waiter gets the new permit first
    io_.run();
    ASSERT_TRUE(b.done);
    EXPECT_FALSE(b.ec);
    EXPECT_EQ(c.ec, ResultCode::lock_busy);
    Outcome d;
    try_acquire("db", of(1), d);  // lowers it to 1 with 2 held: nothing taken back
    io_.run();
    EXPECT_EQ(d.ec, ResultCode::lock_busy);
    EXPECT_TRUE(a.guard.owns_permits() && b.guard.owns_permits());
    a.guard.async_release([](error_code) {});
    b.guard.async_release([](error_code) {});
    io_.run();
}

TEST_F(SemaphoreContract, BadRequestsAreInvalidArgumentAndChangeNothing) {
    Outcome zero_limit, zero_permits, too_many, empty, huge, bad_lease;
    try_acquire("db", of(0, 0), zero_limit);
    try_acquire("db", of(2, 0), zero_permits);
    try_acquire("db", of(2, 3), too_many);
    try_acquire("", of(1), empty);
    try_acquire(std::string(5000, 'r'), of(1), huge);
    try_acquire("db", of(1, 1, 0ms, 0ms), bad_lease);
    io_.run();
    for (const Outcome* o : {&zero_limit, &zero_permits, &too_many, &empty, &huge, &bad_lease}) {
        EXPECT_EQ(o->ec, ResultCode::invalid_argument);
        EXPECT_FALSE(o->guard.owns_permits());
    }
    EXPECT_EQ(local_->resources(), 0u);
    LocalSemaphoreServiceOptions bad;
    bad.max_resource_bytes = 0;
    EXPECT_THROW(LocalSemaphoreService(io_.get_executor(), bad), std::invalid_argument);
}

}  // namespace
}  // namespace keyedpool::test
