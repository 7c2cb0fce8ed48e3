// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The direct hand-over of RedisLockService: a release gives the lock to the first live waiter in
// the Redis queue, which returns owning it without another request; waiters whose place expired
// are skipped. Against a real redis-server, two services standing for two processes.
#include "awaiting.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/redis/lock_service.hpp>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <tuple>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::RedisLockService;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class LockHandOffTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new RedisServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }

    std::unique_ptr<RedisLockService> make_service() {
        redis::RedisLockServiceOptions options;
        options.connection = server_->config();
        options.recheck_interval = 1h;  // the lock can only reach a waiter by the hand-over
        return std::make_unique<RedisLockService>(io_.get_executor(), options);
    }

    asio::awaitable<redis::Reply> command(std::vector<std::string> arguments) {
        return one_command(server_->config(), std::move(arguments));
    }

    /// Starts a waiter on `service` and returns once its first attempt has queued it.
    asio::awaitable<void> queue_waiter(RedisLockService& service, const std::string& resource,
                                       std::optional<std::pair<error_code, LockGuard>>& result) {
        const auto before = service.lock_requests_sent();
        service.async_lock(
            resource, LockOptions{.wait = 5s, .lease = 10s},
            [&result](error_code ec, LockGuard guard) { result.emplace(ec, std::move(guard)); });
        EXPECT_TRUE(co_await eventually([&] { return service.lock_requests_sent() > before; }));
        // The request is counted when sent: its reply (the place taken) comes a round trip later.
        bool queued = false;
        for (int i = 0; i < 10000 && !queued; ++i) {
            const auto length =
                co_await command(redis::command("LLEN", "keyedpool:lock:{" + resource + "}:queue"));
            queued = length.as_integer() > 0;
        }
        EXPECT_TRUE(queued) << "the waiter never took its place in the Redis queue";
    }

    static RedisServer* server_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisServer* LockHandOffTest::server_ = nullptr;

// The waiter's only request is the try that queued it: the release hands it the lock, with the
// next fencing token, and it returns owning it (before, it sent a second acquire when woken).
TEST_F(LockHandOffTest, AReleaseHandsTheLockToTheWaiterWhichReturnsWithoutAnotherRequest) {
    auto holder_service = make_service();
    auto waiter_service = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        {
            // Once before, so the waiter's service is already subscribed to the channel (its
            // first SUBSCRIBE, when confirmed, makes it try once more: a release could have come
            // before the subscription was live).
            auto held = co_await holder_service->async_try_lock("handed", 10s);
            std::optional<std::pair<error_code, LockGuard>> first;
            co_await queue_waiter(*waiter_service, "handed", first);
            co_await held.async_release();
            EXPECT_TRUE(co_await eventually([&] { return first.has_value(); }));
            if (first) {
                co_await first->second.async_release();
            }
        }
        auto held = co_await holder_service->async_try_lock("handed", 10s);
        std::optional<std::pair<error_code, LockGuard>> waiter;
        co_await queue_waiter(*waiter_service, "handed", waiter);
        const auto requests = waiter_service->lock_requests_sent();
        const auto holder_fence = held.fencing_token();
        co_await held.async_release();
        EXPECT_TRUE(co_await eventually([&] { return waiter.has_value(); }));
        if (!waiter) {
            co_return;
        }
        auto& [ec, guard] = *waiter;
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(guard.owns_lock());
        EXPECT_EQ(guard.fencing_token(), holder_fence + 1);
        EXPECT_EQ(waiter_service->lock_requests_sent(), requests)
            << "the woken waiter asked for the lock again";
        EXPECT_GE(guard.valid_until() - clock::now(), 5s) << "valid for at least half its lease";
        const auto owner = co_await command(redis::command("GET", "keyedpool:lock:{handed}"));
        EXPECT_FALSE(owner.is_nil());
        co_await guard.async_release();
        const auto after = co_await command(redis::command("EXISTS", "keyedpool:lock:{handed}"));
        EXPECT_EQ(after.as_integer(), 0) << "released, with nobody left to hand it to";
    });
}

// A token ahead in the queue whose place expired (its process stopped trying) is passed over:
// the lock goes to the live waiter behind it, not to a dead one for a whole lease.
TEST_F(LockHandOffTest, AHandOverSkipsAWaiterWhosePlaceExpired) {
    auto holder_service = make_service();
    auto waiter_service = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto held = co_await holder_service->async_try_lock("skips", 10s);
        std::optional<std::pair<error_code, LockGuard>> waiter;
        co_await queue_waiter(*waiter_service, "skips", waiter);
        // A dead waiter at the head: its place expired at server time 1 ms.
        co_await command(redis::command("LPUSH", "keyedpool:lock:{skips}:queue", "dead"));
        co_await command(redis::command("ZADD", "keyedpool:lock:{skips}:queued", 1, "dead"));
        co_await command(redis::command("HSET", "keyedpool:lock:{skips}:leases", "dead", 60000));
        co_await held.async_release();
        EXPECT_TRUE(co_await eventually([&] { return waiter.has_value(); }));
        if (!waiter) {
            co_return;
        }
        EXPECT_FALSE(waiter->first) << waiter->first.message();
        const auto owner = co_await command(redis::command("GET", "keyedpool:lock:{skips}"));
        EXPECT_NE(owner.text(), "dead") << "handed to a dead waiter";
        const auto leftovers = co_await command(
            redis::command("EXISTS", "keyedpool:lock:{skips}:queue",
                           "keyedpool:lock:{skips}:queued", "keyedpool:lock:{skips}:leases"));
        EXPECT_EQ(leftovers.as_integer(), 0) << "the dead waiter's entries were left behind";
        co_await waiter->second.async_release();
    });
}

// The waiter the lock is handed to is cancelled at that very moment (the hand-over message and the
// cancellation race): whichever wins, the lock reaches the next waiter at once — given back by the
// cancelled waiter's clean-up (the abandon script hands it on), or released by it if the hand-over
// won — and is never left with a token nobody uses.
TEST_F(LockHandOffTest, AWaiterCancelledAsTheLockIsHandedToItPassesItOn) {
    auto holder_service = make_service();
    auto first_service = make_service();
    auto second_service = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto held = co_await holder_service->async_try_lock("passed-on", 10s);
        asio::cancellation_signal cancel_first;
        std::optional<std::pair<error_code, LockGuard>> first;
        first_service->async_lock(
            "passed-on", LockOptions{.wait = 5s, .lease = 10s},
            asio::bind_cancellation_slot(cancel_first.slot(), [&](error_code ec, LockGuard g) {
                first.emplace(ec, std::move(g));
            }));
        bool first_queued = false;
        for (int i = 0; i < 10000 && !first_queued; ++i) {
            first_queued =
                (co_await command(redis::command("LLEN", "keyedpool:lock:{passed-on}:queue")))
                    .as_integer() == 1;
        }
        EXPECT_TRUE(first_queued);
        std::optional<std::pair<error_code, LockGuard>> second;
        co_await queue_waiter(*second_service, "passed-on", second);

        co_await held.async_release();  // hands the lock to the first waiter...
        cancel_first.emit(asio::cancellation_type::terminal);  // ...which is cancelled meanwhile
        EXPECT_TRUE(co_await eventually([&] { return first.has_value(); }));
        if (first) {
            RecordProperty("cancelled_waiter_got",
                           first->first ? first->first.message() : "the lock");
            if (!first->first) {
                co_await first->second.async_release();  // the hand-over won: it held the lock
            }
        }
        EXPECT_TRUE(co_await eventually([&] { return second.has_value(); }))
            << "the lock did not reach the next waiter (stuck with the cancelled one)";
        if (second) {
            EXPECT_FALSE(second->first) << second->first.message();
            co_await second->second.async_release();
        }
    });
}

/// Lets `turns` handlers of the io_context run first (a lock request just made takes its place in
/// the service's local queue within its first turn).
asio::awaitable<void> yield_turns(int turns) {
    for (int i = 0; i < turns; ++i) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
}

// Two callers of one process: the holder's release leaves the server lock to the caller queued
// behind it here, which takes it over in one request (release + acquire would be two) with a new
// token and the next fencing token.
TEST_F(LockHandOffTest, AHandOverInsideTheProcessTakesOneRequestAndTheNextFence) {
    auto service = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto held = co_await service->async_try_lock("in-process", 10s);
        EXPECT_TRUE(held.owns_lock());
        std::optional<std::pair<error_code, LockGuard>> next;
        service->async_lock(
            "in-process", LockOptions{.wait = 5s, .lease = 10s},
            [&next](error_code ec, LockGuard guard) { next.emplace(ec, std::move(guard)); });
        co_await yield_turns(5);
        EXPECT_FALSE(next.has_value());
        const auto requests = service->lock_requests_sent();
        const auto fence = held.fencing_token();
        const auto released = co_await held.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(std::get<0>(released)) << std::get<0>(released).message();
        EXPECT_TRUE(co_await eventually([&] { return next.has_value(); }));
        if (!next) {
            co_return;
        }
        auto& [ec, guard] = *next;
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(guard.owns_lock());
        EXPECT_EQ(guard.fencing_token(), fence + 1);
        EXPECT_EQ(service->lock_requests_sent(), requests + 1)
            << "the hand-over inside the process took more than one request";
        EXPECT_GE(guard.valid_until() - clock::now(), 5s) << "valid for at least half its lease";
        // The server knows the new holder: its release is accepted and frees the lock.
        const auto last = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(std::get<0>(last)) << std::get<0>(last).message();
        const auto after =
            co_await command(redis::command("EXISTS", "keyedpool:lock:{in-process}"));
        EXPECT_EQ(after.as_integer(), 0);
    });
}

// FIFO across processes: a caller of another process queued on the server before this process's
// next caller gets the lock first; the hand-over inside the process does not jump the queue.
TEST_F(LockHandOffTest, AHandOverInsideTheProcessYieldsToAnotherProcessQueuedFirst) {
    auto service = make_service();
    auto other_process = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto held = co_await service->async_try_lock("fifo", 10s);
        std::optional<std::pair<error_code, LockGuard>> other;
        co_await queue_waiter(*other_process, "fifo", other);
        std::optional<std::pair<error_code, LockGuard>> local;
        service->async_lock(
            "fifo", LockOptions{.wait = 5s, .lease = 10s},
            [&local](error_code ec, LockGuard guard) { local.emplace(ec, std::move(guard)); });
        co_await yield_turns(5);
        co_await held.async_release();
        EXPECT_TRUE(co_await eventually([&] { return other.has_value(); }));
        EXPECT_FALSE(local.has_value()) << "the caller of this process went before the queue";
        if (!other) {
            co_return;
        }
        EXPECT_FALSE(other->first) << other->first.message();
        const auto other_fence = other->second.fencing_token();
        co_await other->second.async_release();
        EXPECT_TRUE(co_await eventually([&] { return local.has_value(); }));
        if (local) {
            EXPECT_FALSE(local->first) << local->first.message();
            EXPECT_GT(local->second.fencing_token(), other_fence);
            co_await local->second.async_release();
        }
    });
}

}  // namespace
}  // namespace keyedpool::test
