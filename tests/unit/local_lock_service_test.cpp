// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// LocalLockService, LockGuard (lease, watchdog, loss) and with_lock on virtual time: every lease,
// wait and renewal here ends when the test advances time, at the exact instant it should.
// (The same contract on both backends, in real time, is tests/integration/lock_contract_test.cpp.)
#include "quiet_logger.hpp"
#include "virtual_io.hpp"

#include <keyedpool/local_lock_service.hpp>
#include <keyedpool/with_lock.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <optional>
#include <stdexcept>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

class LocalLocks : public ::testing::Test {
  protected:
    LocalLockServiceOptions virtual_options() {
        LocalLockServiceOptions options;
        options.time = TimeSource::from_traits<VirtualTimeTraits>();
        return options;
    }

    /// The outcome of one lock request, filled in by its completion.
    struct Outcome {
        bool done = false;
        error_code ec;
        LockGuard guard;
    };

    void try_lock(const std::string& resource, std::chrono::milliseconds lease, Outcome& out) {
        service_.async_try_lock(resource, lease, [&out](error_code ec, LockGuard g) {
            out = Outcome{true, ec, std::move(g)};
        });
    }

    void lock(const std::string& resource, LockOptions options, Outcome& out,
              asio::cancellation_slot slot = {}) {
        service_.async_lock(resource, options,
                            asio::bind_cancellation_slot(slot, [&out](error_code ec, LockGuard g) {
                                out = Outcome{true, ec, std::move(g)};
                            }));
    }

    void TearDown() override {
        // Nothing a lock started (lease timer, watchdog, background release) outlives its end.
        EXPECT_TRUE(io_.drain(1h)) << "a timer is still pending";
    }

    QuietLogger quiet_;
    VirtualIo io_;
    LocalLockService service_{io_.get_executor(), virtual_options()};
};

TEST_F(LocalLocks, TheLeaseEndsTheLockAtItsEndAndNotBefore) {
    Outcome holder, early, late;
    try_lock("r", 100ms, holder);
    io_.run();
    ASSERT_FALSE(holder.ec);
    // Validity is the lease minus a drift allowance of 1% + 2 ms: 97 ms.
    io_.advance(96ms);
    EXPECT_TRUE(holder.guard.owns_lock());
    try_lock("r", 10s, early);
    io_.run();
    EXPECT_EQ(early.ec, ResultCode::lock_busy);
    io_.advance(1ms);
    EXPECT_TRUE(holder.guard.lost()) << "the holder was not told at the end of its validity";
    io_.advance(3ms);  // the lease itself (100 ms) is over: the resource is free
    try_lock("r", 10s, late);
    io_.run();
    EXPECT_FALSE(late.ec) << late.ec.message();
    EXPECT_GT(late.guard.fencing_token(), holder.guard.fencing_token());
    bool released = false;
    late.guard.async_release([&](error_code ec) {
        EXPECT_FALSE(ec);
        released = true;
    });
    io_.run();
    EXPECT_TRUE(released);
}

TEST_F(LocalLocks, AStaleHolderCannotReleaseTheNextHoldersLock) {
    Outcome stale, fresh, probe;
    try_lock("r", 50ms, stale);
    io_.advance(50ms);
    EXPECT_TRUE(stale.guard.lost());
    try_lock("r", 10s, fresh);
    io_.run();
    ASSERT_FALSE(fresh.ec);
    error_code stale_release;
    stale.guard.async_release([&](error_code ec) { stale_release = ec; });
    io_.run();
    EXPECT_EQ(stale_release, ResultCode::lock_lost);
    try_lock("r", 10s, probe);
    io_.run();
    EXPECT_EQ(probe.ec, ResultCode::lock_busy) << "the stale holder released the new lock";
}

TEST_F(LocalLocks, TheWatchdogKeepsTheLockThroughManyLeases) {
    LockOptions options;
    options.lease = 150ms;
    options.auto_renew = true;
    Outcome holder, probe;
    lock("r", options, holder);
    io_.run();
    ASSERT_FALSE(holder.ec);
    io_.advance(10 * 150ms);  // ten leases
    EXPECT_TRUE(holder.guard.owns_lock());
    EXPECT_FALSE(holder.guard.lost());
    try_lock("r", 10s, probe);
    io_.run();
    EXPECT_EQ(probe.ec, ResultCode::lock_busy);
    holder.guard.async_release([](error_code) {});
    io_.run();
}

TEST_F(LocalLocks, AWaiterGetsTheLockTheMomentItIsReleasedAndWaitsInOrder) {
    LockOptions options;
    options.wait = 1s;
    options.lease = 10s;
    Outcome holder, first, second;
    lock("r", options, holder);
    io_.run();
    lock("r", options, first);
    io_.run();
    lock("r", options, second);
    io_.run();
    EXPECT_FALSE(first.done);
    io_.advance(100ms);
    EXPECT_FALSE(first.done);
    holder.guard.async_release([](error_code) {});
    io_.run();  // no time passes
    ASSERT_TRUE(first.done);
    EXPECT_FALSE(first.ec);
    EXPECT_FALSE(second.done) << "FIFO: the second waiter jumped the queue";
    first.guard.async_release([](error_code) {});
    io_.run();
    EXPECT_FALSE(second.ec);
    second.guard.async_release([](error_code) {});
    io_.run();
    EXPECT_EQ(service_.held(), 0u);
}

TEST_F(LocalLocks, WaitingEndsWithLockTimeoutExactlyAtTheWait) {
    LockOptions options;
    options.wait = 200ms;
    Outcome holder, waiter;
    try_lock("r", 10s, holder);
    lock("r", options, waiter);
    io_.advance(199ms);
    EXPECT_FALSE(waiter.done);
    io_.advance(1ms);
    ASSERT_TRUE(waiter.done);
    EXPECT_EQ(waiter.ec, ResultCode::lock_timeout);
    holder.guard.async_release([](error_code) {});
    io_.run();
}

// The overload with diagnostics says why a wait ended: the lock stayed held (lock_busy), no
// request went to a server; a success leaves it empty.
TEST_F(LocalLocks, DiagnosticsSayALockTimeoutWasAHolder) {
    LockOptions options;
    options.wait = 200ms;
    Outcome holder;
    try_lock("r", 10s, holder);
    LockDiagnostics why;
    why.attempts = 7;  // reset by the call
    bool done = false;
    error_code ec;
    service_.async_lock("r", options, why, [&](error_code e, LockGuard) {
        ec = e;
        done = true;
    });
    io_.advance(200ms);
    ASSERT_TRUE(done);
    EXPECT_EQ(ec, ResultCode::lock_timeout);
    EXPECT_EQ(why.cause, ResultCode::lock_busy);
    EXPECT_EQ(why.attempts, 0);
    holder.guard.async_release([](error_code) {});
    io_.run();

    done = false;
    LockGuard taken;
    service_.async_lock("r", options, why, [&](error_code e, LockGuard g) {
        ec = e;
        taken = std::move(g);
        done = true;
    });
    io_.run();
    ASSERT_TRUE(done);
    EXPECT_FALSE(ec);
    EXPECT_FALSE(why.cause);
    taken.async_release([](error_code) {});
    io_.run();
}

TEST_F(LocalLocks, ACancelledWaiterLeavesAndTheNextOneIsServed) {
    LockOptions options;
    options.wait = 10s;
    Outcome holder, cancelled, next;
    asio::cancellation_signal cancel;
    try_lock("r", 10s, holder);
    lock("r", options, cancelled, cancel.slot());
    lock("r", options, next);
    io_.run();
    cancel.emit(asio::cancellation_type::terminal);
    io_.run();
    EXPECT_EQ(cancelled.ec, asio::error::operation_aborted);
    holder.guard.async_release([](error_code) {});
    io_.run();
    EXPECT_FALSE(next.ec) << "the hand-off was lost with the cancelled waiter";
    next.guard.async_release([](error_code) {});
    io_.run();
    EXPECT_EQ(service_.held(), 0u);
}

TEST_F(LocalLocks, ADetachedLockIsHeldUntilItsLeaseEndsThenForgotten) {
    Outcome holder, during, after;
    try_lock("r", 1s, holder);
    io_.run();
    holder.guard.detach();
    io_.advance(500ms);
    try_lock("r", 1s, during);
    io_.run();
    EXPECT_EQ(during.ec, ResultCode::lock_busy);
    io_.advance(500ms);
    EXPECT_EQ(service_.held(), 0u) << "the detached lock was not forgotten";
    try_lock("r", 1s, after);
    io_.run();
    EXPECT_FALSE(after.ec);
    after.guard.async_release([](error_code) {});
    io_.run();
}

TEST_F(LocalLocks, LostSlotAndAsyncWaitLostFireWhenTheLeaseEnds) {
    Outcome holder;
    try_lock("r", 100ms, holder);
    io_.run();
    VirtualTimer work(io_.get_executor(), 10s);
    error_code work_ec;
    work.async_wait(asio::bind_cancellation_slot(holder.guard.lost_slot(),
                                                 [&](error_code ec) { work_ec = ec; }));
    std::optional<error_code> lost;
    holder.guard.async_wait_lost([&](error_code ec) { lost = ec; });
    io_.advance(96ms);
    EXPECT_FALSE(lost.has_value());
    io_.advance(1ms);
    ASSERT_TRUE(lost.has_value());
    EXPECT_FALSE(*lost) << "async_wait_lost completes with success when the lock is lost";
    EXPECT_EQ(work_ec, asio::error::operation_aborted) << "work bound to lost_slot() ran on";
}

TEST_F(LocalLocks, BadInputIsATypedErrorAndBadOptionsThrowNamingTheField) {
    Outcome empty, zero_lease;
    try_lock("", 1s, empty);
    try_lock("r", 0ms, zero_lease);
    io_.run();
    EXPECT_EQ(empty.ec, ResultCode::invalid_argument);
    EXPECT_EQ(zero_lease.ec, ResultCode::invalid_argument);
    LocalLockServiceOptions bad;
    bad.max_resource_bytes = 0;
    try {
        LocalLockService service(io_.get_executor(), bad);
        FAIL() << "accepted max_resource_bytes 0";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("LocalLockServiceOptions.max_resource_bytes"),
                  std::string::npos);
    }
}

// ---- with_lock ------------------------------------------------------------------------------

TEST_F(LocalLocks, WithLockReturnsTheResultAndReleases) {
    std::optional<int> result;
    asio::co_spawn(
        io_.context(),
        [&]() -> asio::awaitable<void> {
            result = co_await with_lock(service_, "r", LockOptions{},
                                        []() -> asio::awaitable<int> { co_return 42; });
        },
        asio::detached);
    io_.run();
    EXPECT_EQ(result, 42);
    EXPECT_EQ(service_.held(), 0u);
}

TEST_F(LocalLocks, WithLockReleasesAndRethrowsWhenTheWorkThrows) {
    bool caught = false;
    asio::co_spawn(
        io_.context(),
        [&]() -> asio::awaitable<void> {
            try {
                co_await with_lock(service_, "r", LockOptions{}, []() -> asio::awaitable<void> {
                    throw std::runtime_error("work failed");
                    co_return;
                });
            } catch (const std::runtime_error&) {
                caught = true;
            }
        },
        asio::detached);
    io_.run();
    EXPECT_TRUE(caught);
    EXPECT_EQ(service_.held(), 0u);
}

// The lock is lost while the work runs: the work is cancelled at that instant and with_lock
// reports lock_lost (not the work's own result).
TEST_F(LocalLocks, WithLockCancelsTheWorkWhenTheLockIsLost) {
    LockOptions options;
    options.lease = 100ms;
    error_code thrown;
    error_code work_ec;
    asio::co_spawn(
        io_.context(),
        [&]() -> asio::awaitable<void> {
            try {
                co_await with_lock(service_, "r", options, [&]() -> asio::awaitable<void> {
                    VirtualTimer long_work(co_await asio::this_coro::executor, 10s);
                    auto [ec] = co_await long_work.async_wait(asio::as_tuple(asio::use_awaitable));
                    work_ec = ec;
                });
            } catch (const boost::system::system_error& e) {
                thrown = e.code();
            }
        },
        asio::detached);
    io_.advance(96ms);
    EXPECT_FALSE(thrown);
    io_.advance(1ms);
    EXPECT_EQ(work_ec, asio::error::operation_aborted);
    EXPECT_EQ(thrown, ResultCode::lock_lost);
}

TEST_F(LocalLocks, WithLockThrowsTheServicesCodeWhenTheLockIsNotAcquired) {
    Outcome holder;
    try_lock("r", 10s, holder);
    io_.run();
    LockOptions options;
    options.wait = 50ms;
    error_code thrown;
    bool ran = false;
    asio::co_spawn(
        io_.context(),
        [&]() -> asio::awaitable<void> {
            try {
                co_await with_lock(service_, "r", options, [&]() -> asio::awaitable<void> {
                    ran = true;
                    co_return;
                });
            } catch (const boost::system::system_error& e) {
                thrown = e.code();
            }
        },
        asio::detached);
    io_.advance(50ms);
    EXPECT_EQ(thrown, ResultCode::lock_timeout);
    EXPECT_FALSE(ran);
    holder.guard.async_release([](error_code) {});
    io_.run();
}

}  // namespace
}  // namespace keyedpool::test
