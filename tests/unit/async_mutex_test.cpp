// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "virtual_io.hpp"

#include <keyedpool/async_mutex.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>

#include <optional>
#include <vector>

namespace keyedpool {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

TEST(AsyncMutex, TryLockAndUnlock) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    EXPECT_TRUE(mutex.try_lock());
    EXPECT_FALSE(mutex.try_lock());
    EXPECT_TRUE(mutex.unlock());
    EXPECT_FALSE(mutex.unlock()) << "unlocking a free mutex must be refused, not corrupt it";
    EXPECT_TRUE(mutex.try_lock());
    EXPECT_TRUE(mutex.unlock());
}

TEST(AsyncMutex, NeverCompletesInline) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    bool done = false;
    mutex.async_lock([&](error_code ec) {
        EXPECT_FALSE(ec);
        done = true;
    });
    EXPECT_FALSE(done) << "the handler ran inside async_lock";
    io.run();
    EXPECT_TRUE(done);
    EXPECT_FALSE(mutex.try_lock());
}

TEST(AsyncMutex, HandsOffInFifoOrder) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
        mutex.async_lock([&, i](error_code ec) {
            ASSERT_FALSE(ec);
            order.push_back(i);
        });
    }
    io.poll();
    EXPECT_TRUE(order.empty());
    for (int i = 0; i < 5; ++i) {
        mutex.unlock();
        io.poll();
        ASSERT_EQ(order.size(), static_cast<std::size_t>(i + 1));
        EXPECT_EQ(order.back(), i);
        // A newcomer cannot barge ahead of queued waiters.
        EXPECT_FALSE(mutex.try_lock());
    }
    EXPECT_TRUE(mutex.unlock());
}

TEST(AsyncMutex, CancellingAWaiterCompletesItAndKeepsTheQueue) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    asio::cancellation_signal cancel_a;
    std::optional<error_code> a, b;
    mutex.async_lock(asio::bind_cancellation_slot(cancel_a.slot(), [&](error_code ec) { a = ec; }));
    mutex.async_lock([&](error_code ec) { b = ec; });
    io.poll();
    cancel_a.emit(asio::cancellation_type::terminal);
    io.poll();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(*a, asio::error::operation_aborted);
    EXPECT_FALSE(b.has_value());
    mutex.unlock();
    io.poll();
    ASSERT_TRUE(b.has_value());
    EXPECT_FALSE(*b);
}

// The interleaving behind boostorg/mysql#509: the lock is handed to a waiter, and cancellation
// reaches it before its completion runs. The waiter must either own the lock or pass it on; here it
// reports operation_aborted and the next waiter gets the lock.
TEST(AsyncMutex, WokenThenCancelledPassesTheLockOn) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    asio::cancellation_signal cancel_a;
    std::optional<error_code> a, b;
    mutex.async_lock(asio::bind_cancellation_slot(cancel_a.slot(), [&](error_code ec) { a = ec; }));
    mutex.async_lock([&](error_code ec) { b = ec; });
    io.poll();
    mutex.unlock();  // hands the lock to A; A's completion is queued
    cancel_a.emit(asio::cancellation_type::terminal);  // ...and A is cancelled before it runs
    io.poll();
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(*a, asio::error::operation_aborted);
    ASSERT_TRUE(b.has_value()) << "the wake-up was lost: B still waits";
    EXPECT_FALSE(*b);
    EXPECT_FALSE(mutex.try_lock()) << "B must own the lock";
}

// The same race as users meet it: a lock raced against a timeout in a parallel group.
TEST(AsyncMutex, LockRacedWithATimerNeverLeaksTheLock) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    asio::steady_timer timeout(io, asio::steady_timer::time_point::max());
    std::optional<error_code> lock_result;
    std::optional<error_code> b;
    asio::experimental::make_parallel_group(mutex.async_lock(asio::deferred),
                                            timeout.async_wait(asio::deferred))
        .async_wait(asio::experimental::wait_for_one(),
                    [&](std::array<std::size_t, 2> order, error_code lock_ec, error_code) {
                        EXPECT_EQ(order[0], 1u) << "the timer should have won";
                        lock_result = lock_ec;
                    });
    mutex.async_lock([&](error_code ec) { b = ec; });
    io.poll();
    timeout.cancel();  // the "timeout" fires first...
    mutex.unlock();    // ...and in the same tick the lock is handed to the group's waiter
    io.poll();
    ASSERT_TRUE(lock_result.has_value());
    EXPECT_EQ(*lock_result, asio::error::operation_aborted);
    ASSERT_TRUE(b.has_value()) << "the lock was lost to a waiter that gave up";
    EXPECT_FALSE(*b);
}

TEST(AsyncMutex, ScopedLockReleasesOnScopeExit) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    int in_critical_section = 0;
    int max_in_critical_section = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 100; ++i) {
            auto guard = co_await mutex.async_scoped_lock();
            EXPECT_TRUE(guard.owns_lock());
            ++in_critical_section;
            max_in_critical_section = std::max(max_in_critical_section, in_critical_section);
            co_await asio::post(io, asio::use_awaitable);  // yield while holding
            --in_critical_section;
        }
    };
    for (int i = 0; i < 4; ++i) {
        asio::co_spawn(io, worker(), asio::detached);
    }
    io.run();
    EXPECT_EQ(max_in_critical_section, 1);
    EXPECT_TRUE(mutex.try_lock()) << "a guard failed to release";
}

TEST(AsyncMutex, PartialAndTotalCancellationAreHonouredWhileWaiting) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    asio::cancellation_signal partial, total;
    std::optional<error_code> a, b;
    mutex.async_lock(asio::bind_cancellation_slot(partial.slot(), [&](error_code ec) { a = ec; }));
    mutex.async_lock(asio::bind_cancellation_slot(total.slot(), [&](error_code ec) { b = ec; }));
    io.poll();
    partial.emit(asio::cancellation_type::partial);
    total.emit(asio::cancellation_type::total);
    io.poll();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, asio::error::operation_aborted);
    EXPECT_EQ(*b, asio::error::operation_aborted);
    EXPECT_TRUE(mutex.unlock());
    EXPECT_TRUE(mutex.try_lock()) << "a cancelled waiter took the lock";
}

TEST(AsyncMutex, CancelWaitersKeepsTheHolder) {
    asio::io_context io;
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    int aborted = 0;
    for (int i = 0; i < 3; ++i) {
        mutex.async_lock([&](error_code ec) { aborted += ec == asio::error::operation_aborted; });
    }
    io.poll();
    mutex.cancel_waiters();
    io.poll();
    EXPECT_EQ(aborted, 3);
    EXPECT_FALSE(mutex.try_lock());
    EXPECT_TRUE(mutex.unlock());
    EXPECT_TRUE(mutex.try_lock());
}

TEST(AsyncMutex, WorksWithAwaitableOperators) {
    using namespace asio::experimental::awaitable_operators;
    test::VirtualIo
        io;  // the timeout fires when the test moves virtual time, not after a real 5 ms
    AsyncMutex mutex(io.get_executor());
    ASSERT_TRUE(mutex.try_lock());
    bool timed_out = false;
    asio::co_spawn(
        io.context(),
        [&]() -> asio::awaitable<void> {
            test::VirtualTimer timer(co_await asio::this_coro::executor,
                                     std::chrono::milliseconds(5));
            auto result = co_await (mutex.async_lock() || timer.async_wait(asio::use_awaitable));
            timed_out = result.index() == 1;
        },
        asio::detached);
    io.advance(std::chrono::milliseconds(4));
    EXPECT_FALSE(timed_out);
    io.advance(std::chrono::milliseconds(1));
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(mutex.unlock());
    EXPECT_TRUE(mutex.try_lock()) << "the timed-out waiter must not hold the lock";
}

}  // namespace
}  // namespace keyedpool
