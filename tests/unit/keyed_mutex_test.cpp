// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/keyed_mutex.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <optional>
#include <string>

namespace keyedpool {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Mutex = KeyedMutex<int>;

// Runs ready handlers; restart() first because an io_context stops whenever it runs out of work.
void poll(asio::io_context& io) {
    io.restart();
    io.poll();
}

TEST(KeyedMutex, DifferentKeysDoNotWaitOnEachOther) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    std::optional<Mutex::Guard> one;
    mutex.async_lock(1, [&](error_code ec, Mutex::Guard g) {
        ASSERT_FALSE(ec);
        one = std::move(g);
    });
    io.run();
    ASSERT_TRUE(one && one->owns_lock());
    EXPECT_EQ(one->key(), 1);
    bool got_two = false;
    mutex.async_lock(2, [&](error_code ec, Mutex::Guard g) { got_two = !ec && g.owns_lock(); });
    io.restart();
    io.run();
    EXPECT_TRUE(got_two) << "key 2 waited for key 1";
}

TEST(KeyedMutex, SameKeyIsExclusiveUntilTheGuardGoes) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    std::optional<Mutex::Guard> first;
    std::optional<Mutex::Guard> second;
    mutex.async_lock(7, [&](error_code, Mutex::Guard g) { first = std::move(g); });
    mutex.async_lock(7, [&](error_code, Mutex::Guard g) { second = std::move(g); });
    poll(io);
    ASSERT_TRUE(first);
    EXPECT_FALSE(second);
    EXPECT_EQ(mutex.size(), 1u);
    first.reset();
    poll(io);
    ASSERT_TRUE(second);
    EXPECT_TRUE(second->owns_lock());
    second.reset();
    poll(io);
    EXPECT_EQ(mutex.size(), 0u);
}

// The uncontended path of a lock service: taking a free key and giving it back run no handler
// (each would be a trip through the event loop, an epoll_wait, before the request can go out).
TEST(KeyedMutex, TryLockAndReleaseRunNoHandler) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    Mutex::Guard guard = mutex.try_lock(5);
    ASSERT_TRUE(guard.owns_lock());
    EXPECT_EQ(mutex.size(), 1u);
    EXPECT_FALSE(mutex.try_lock(5)) << "a held key was taken twice";
    EXPECT_TRUE(mutex.try_lock(6)) << "another key waited for key 5";
    EXPECT_EQ(mutex.size(), 1u) << "the busy try and key 6's guard left entries behind";
    guard.unlock();
    EXPECT_EQ(mutex.size(), 0u) << "the entry outlived its last guard until a handler ran";
    EXPECT_EQ(io.poll(), 0u) << "try_lock or the release queued handlers";
}

// A waiter queued behind a try_lock holder is handed the lock when that guard goes.
TEST(KeyedMutex, TryLockHolderHandsOverToAWaiter) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    Mutex::Guard holder = mutex.try_lock(1);
    std::optional<Mutex::Guard> waiter;
    mutex.async_lock(1, [&](error_code ec, Mutex::Guard g) {
        EXPECT_FALSE(ec);
        waiter = std::move(g);
    });
    poll(io);
    EXPECT_FALSE(waiter);
    holder.unlock();
    poll(io);
    ASSERT_TRUE(waiter && waiter->owns_lock());
    EXPECT_FALSE(mutex.try_lock(1));
    waiter.reset();
    EXPECT_EQ(mutex.size(), 0u);
}

TEST(KeyedMutex, ChurningManyKeysLeavesTheMapEmpty) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    std::size_t max_size = 0;
    int locked = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (int key = 0; key < 100'000; ++key) {
                auto guard = co_await mutex.async_lock(key);
                ++locked;
                max_size = std::max(max_size, mutex.size());
            }
        },
        asio::detached);
    io.run();
    EXPECT_EQ(locked, 100'000);
    EXPECT_EQ(mutex.size(), 0u) << "entries of unused keys were kept";
    EXPECT_LE(max_size, 2u);
}

TEST(KeyedMutex, CancelledWaiterDropsItsEntry) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    std::optional<Mutex::Guard> holder;
    mutex.async_lock(3, [&](error_code, Mutex::Guard g) { holder = std::move(g); });
    poll(io);
    asio::cancellation_signal cancel;
    std::optional<error_code> waiter;
    mutex.async_lock(
        3, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, Mutex::Guard g) {
            waiter = ec;
            EXPECT_FALSE(g.owns_lock());
        }));
    poll(io);
    cancel.emit(asio::cancellation_type::terminal);
    poll(io);
    ASSERT_TRUE(waiter);
    EXPECT_EQ(*waiter, asio::error::operation_aborted);
    holder.reset();
    poll(io);
    EXPECT_EQ(mutex.size(), 0u);
}

TEST(KeyedMutex, CancelWaitersAbortsEveryKey) {
    asio::io_context io;
    Mutex mutex(io.get_executor());
    std::vector<Mutex::Guard> holders;
    int aborted = 0;
    for (int key = 0; key < 3; ++key) {
        mutex.async_lock(key, [&](error_code, Mutex::Guard g) { holders.push_back(std::move(g)); });
        mutex.async_lock(key, [&](error_code ec, Mutex::Guard) {
            aborted += ec == asio::error::operation_aborted;
        });
    }
    poll(io);
    EXPECT_EQ(holders.size(), 3u);
    mutex.cancel_waiters();
    poll(io);
    EXPECT_EQ(aborted, 3);
    holders.clear();
    poll(io);
    EXPECT_EQ(mutex.size(), 0u);
}

TEST(KeyedMutex, GuardMayOutliveTheMutexObject) {
    asio::io_context io;
    std::optional<KeyedMutex<std::string>::Guard> guard;
    {
        KeyedMutex<std::string> mutex(io.get_executor());
        mutex.async_lock("resource", [&](error_code, KeyedMutex<std::string>::Guard g) {
            guard = std::move(g);
        });
        poll(io);
    }
    ASSERT_TRUE(guard && guard->owns_lock());
    EXPECT_EQ(guard->key(), "resource");
    guard.reset();  // must not touch freed memory (ASan)
    poll(io);
}

}  // namespace
}  // namespace keyedpool
