// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// detail::AsyncSemaphore with weights and a changing limit: the base of the in-process semaphore
// service (a holder of N permits counts N times). Driven step by step on one io_context.
#include <keyedpool/detail/async_semaphore.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <optional>
#include <vector>

namespace keyedpool::detail {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

void poll(asio::io_context& io) {
    io.restart();
    io.poll();
}

TEST(WeightedSemaphore, AHolderOfTwoUnitsCountsTwice) {
    asio::io_context io;
    AsyncSemaphore semaphore(io.get_executor(), 3);
    EXPECT_TRUE(semaphore.try_acquire(2));
    EXPECT_FALSE(semaphore.try_acquire(2)) << "2 + 2 units out of 3";
    EXPECT_TRUE(semaphore.try_acquire(1));
    EXPECT_EQ(semaphore.in_use(), 3u);
    EXPECT_FALSE(semaphore.release(4)) << "released more than was held";
    EXPECT_TRUE(semaphore.release(2));
    EXPECT_EQ(semaphore.in_use(), 1u);
}

// Strict FIFO by weight: a heavy waiter at the head is not overtaken by lighter ones behind it
// (they would starve it), and one release can wake several waiters that fit.
TEST(WeightedSemaphore, AHeavyHeadIsNotOvertakenAndOneReleaseWakesAllThatFit) {
    asio::io_context io;
    AsyncSemaphore semaphore(io.get_executor(), 4);
    ASSERT_TRUE(semaphore.try_acquire(3));
    std::vector<int> order;
    semaphore.async_acquire(3, [&](error_code ec) { order.push_back(ec ? -3 : 3); });
    semaphore.async_acquire(1, [&](error_code ec) { order.push_back(ec ? -1 : 1); });
    poll(io);
    EXPECT_TRUE(order.empty()) << "the light waiter barged past the heavy head (1 unit was free)";
    EXPECT_FALSE(semaphore.try_acquire(1)) << "try_acquire barged past the waiters";
    semaphore.release(3);  // 4 free: the head (3) and the next (1) both fit
    poll(io);
    EXPECT_EQ(order, (std::vector<int>{3, 1}));
    EXPECT_EQ(semaphore.in_use(), 4u);
}

// A heavy head that gives up unblocks the lighter waiters behind it at once.
TEST(WeightedSemaphore, ACancelledHeavyHeadLetsTheWaitersBehindItIn) {
    asio::io_context io;
    AsyncSemaphore semaphore(io.get_executor(), 3);
    ASSERT_TRUE(semaphore.try_acquire(2));
    asio::cancellation_signal cancel;
    std::optional<error_code> heavy, light;
    semaphore.async_acquire(
        3, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { heavy = ec; }));
    semaphore.async_acquire(1, [&](error_code ec) { light = ec; });
    poll(io);
    EXPECT_FALSE(light);
    cancel.emit(asio::cancellation_type::terminal);
    poll(io);
    ASSERT_TRUE(heavy && light);
    EXPECT_EQ(*heavy, asio::error::operation_aborted);
    EXPECT_FALSE(*light) << "the light waiter stayed blocked behind a head that left";
    EXPECT_EQ(semaphore.in_use(), 3u);
}

// Woken, then cancelled before its completion ran: its units go to the next waiter, none lost.
TEST(WeightedSemaphore, UnitsGrantedToACancelledWaiterArePassedOn) {
    asio::io_context io;
    AsyncSemaphore semaphore(io.get_executor(), 2);
    ASSERT_TRUE(semaphore.try_acquire(2));
    asio::cancellation_signal cancel;
    std::optional<error_code> first, second;
    semaphore.async_acquire(
        2, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec) { first = ec; }));
    semaphore.async_acquire(2, [&](error_code ec) { second = ec; });
    poll(io);
    semaphore.release(2);                            // granted to the first; completion posted
    cancel.emit(asio::cancellation_type::terminal);  // before it runs
    poll(io);
    ASSERT_TRUE(first && second);
    EXPECT_EQ(*first, asio::error::operation_aborted);
    EXPECT_FALSE(*second) << "the units handed to the cancelled waiter were lost";
    EXPECT_EQ(semaphore.in_use(), 2u);
}

// The limit follows the latest setting: raising it wakes waiters at once; lowering it keeps what
// is held and hands nothing out until the count is under the new limit.
TEST(WeightedSemaphore, TheLimitCanBeRaisedAndLowered) {
    asio::io_context io;
    AsyncSemaphore semaphore(io.get_executor(), 1);
    ASSERT_TRUE(semaphore.try_acquire(1));
    std::optional<error_code> waiter;
    semaphore.async_acquire(2, [&](error_code ec) { waiter = ec; });
    poll(io);
    EXPECT_FALSE(waiter);
    semaphore.set_limit(3);
    poll(io);
    ASSERT_TRUE(waiter);
    EXPECT_FALSE(*waiter);
    EXPECT_EQ(semaphore.in_use(), 3u);
    semaphore.set_limit(1);  // 3 held against a limit of 1: nothing taken back
    EXPECT_EQ(semaphore.in_use(), 3u);
    semaphore.release(2);
    EXPECT_FALSE(semaphore.try_acquire(1)) << "handed out while still at the lowered limit";
    semaphore.release(1);
    EXPECT_TRUE(semaphore.try_acquire(1));
}

}  // namespace
}  // namespace keyedpool::detail
