// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// RedisLockService never waits past its deadlines and keeps its bookkeeping exact, whatever the
// server does: one that never answers or stops answering half-way (a scripted fake), a real
// redis-server frozen with SIGSTOP, and a waiter cancelled at each point where `async_lock` can
// suspend.
#include "awaiting.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"
#include "scripted_redis.hpp"

#include <keyedpool/redis/lock_service.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::RedisLockService;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// A lock operation the test can cancel; `result` is set when it completes.
struct PendingLock {
    asio::cancellation_signal signal;
    std::optional<std::pair<error_code, LockGuard>> result;

    void start(LockService& service, const std::string& resource, LockOptions options) {
        service.async_lock(
            resource, options,
            asio::bind_cancellation_slot(signal.slot(), [this](error_code ec, LockGuard guard) {
                result.emplace(ec, std::move(guard));
            }));
    }
};

LockOptions waiting(clock::duration wait, clock::duration lease = 10s) {
    LockOptions options;
    options.wait = wait;
    options.lease = lease;
    return options;
}

// ---- a server that never answers -------------------------------------------------------------

class SilentServerTest : public ::testing::Test {
  protected:
    /// A lock service on `server` whose requests that do not wait give up after 100 ms.
    RedisLockService service_on(const ScriptedRedis& server) {
        redis::RedisLockServiceOptions options;
        options.connection = server.config();
        options.request_timeout = 100ms;
        return RedisLockService(io_.get_executor(), options);
    }

    QuietLogger quiet_;
    asio::io_context io_;
};

// Accepts, reads, never answers: every operation still ends, by its own deadline or by its
// cancellation (before, all of them waited until the service was destroyed).
TEST_F(SilentServerTest, EveryLockOperationEndsByItsDeadlineOrItsCancellation) {
    ScriptedRedis silent(io_, [](const auto&) { return std::nullopt; });
    RedisLockService locks = service_on(silent);
    run_coroutine(
        io_,
        [&]() -> asio::awaitable<void> {
            // A try-lock: bounded by request_timeout, reported as the server being too slow.
            auto start = clock::now();
            auto [try_ec, try_guard] =
                co_await locks.async_try_lock("r", 10s, asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(try_ec, ResultCode::timeout);
            EXPECT_GE(clock::now() - start, 100ms);

            // A lock with a wait: bounded by the wait, which ran out.
            start = clock::now();
            auto [lock_ec, lock_guard] =
                co_await locks.async_lock("r", waiting(150ms), asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(lock_ec, ResultCode::lock_timeout);
            EXPECT_GE(clock::now() - start, 150ms);

            // A long wait, cancelled once its request reached the server.
            const auto before = silent.received().size();
            PendingLock cancelled;
            cancelled.start(locks, "r", waiting(1h));
            EXPECT_TRUE(co_await eventually([&] { return silent.received().size() > before; }));
            cancelled.signal.emit(asio::cancellation_type::terminal);
            EXPECT_TRUE(co_await eventually([&] { return cancelled.result.has_value(); }, 5s))
                << "the cancellation did not end the lock";
            if (cancelled.result) {
                EXPECT_EQ(cancelled.result->first, asio::error::operation_aborted);
            }
        },
        20s);
}

// The server grants the lock, then stops answering: the release and the renewals are bounded by
// request_timeout, and the guard reports the lock lost when its lease ends.
TEST_F(SilentServerTest, ReleaseAndRenewalEndWhenTheServerStopsAnsweringAfterAGrant) {
    int grants = 0;
    ScriptedRedis stalls(io_, [&](const ScriptedRedis::Command& c) -> std::optional<std::string> {
        if (c.at(0) == "SCRIPT") {
            return "$40\r\n" + std::string(40, 'a') + "\r\n";
        }
        if (c.at(0) == "EVALSHA" && c.at(2) == "5" && grants++ == 0) {  // the first: acquire
            return std::string("*2\r\n:1\r\n:7\r\n");
        }
        return std::nullopt;
    });
    RedisLockService locks = service_on(stalls);
    run_coroutine(
        io_,
        [&]() -> asio::awaitable<void> {
            LockOptions renewing = waiting(1s, 600ms);
            renewing.auto_renew = true;
            auto guard = co_await locks.async_lock("r", renewing);
            EXPECT_EQ(guard.fencing_token(), 7u);
            // The renewal at lease/3 gets no answer: the lock is lost at the end of its lease.
            auto [lost_ec] = co_await guard.async_wait_lost(asio::as_tuple(asio::use_awaitable));
            EXPECT_FALSE(lost_ec);
            EXPECT_TRUE(guard.lost());
            // Releasing still asks the server (it may be ours after all), within request_timeout.
            const auto start = clock::now();
            auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
            EXPECT_EQ(release_ec, ResultCode::lock_lost);
            EXPECT_LT(clock::now() - start, 5s);
        },
        20s);
    int renewals = 0;
    for (const auto& c : stalls.received()) {
        renewals += c.at(0) == "EVALSHA" && c.at(2) == "1";
    }
    EXPECT_GE(renewals, 1) << "the watchdog never tried to renew";
}

// ---- a real server, frozen -------------------------------------------------------------------

class FrozenServerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new RedisServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    void TearDown() override { server_->resume(); }

    std::unique_ptr<RedisLockService> make_service() {
        redis::RedisLockServiceOptions options;
        options.connection = server_->config();
        return std::make_unique<RedisLockService>(io_.get_executor(), options);
    }

    /// Whether `key` exists, asked on a connection of its own.
    asio::awaitable<bool> exists(const std::string& key) {
        co_return (co_await one_command(server_->config(), redis::command("EXISTS", key)))
                .as_integer() == 1;
    }

    static RedisServer* server_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisServer* FrozenServerTest::server_ = nullptr;

// SIGSTOP for longer than the wait: lock_timeout when the wait ends, never a late success (it
// used to complete with success after the stall, with a guard whose lease had run out), and the
// lock the frozen server grants once it runs again is given back.
TEST_F(FrozenServerTest, AStallLongerThanTheWaitIsALockTimeoutOnTime) {
    auto locks = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto warm = co_await locks->async_try_lock("warm-up", 10s);  // connected, scripts loaded
        co_await warm.async_release();
        server_->pause();
        const auto start = clock::now();
        PendingLock pending;
        pending.start(*locks, "stalled", waiting(300ms, 5s));
        // Resumed when the lock completes, or after 3 s if it does not (the old behaviour).
        co_await eventually([&] { return pending.result.has_value(); }, 3s);
        const auto elapsed = clock::now() - start;
        server_->resume();
        EXPECT_TRUE(co_await eventually([&] { return pending.result.has_value(); }));
        if (!pending.result) {
            co_return;
        }
        EXPECT_EQ(pending.result->first, ResultCode::lock_timeout);
        EXPECT_FALSE(pending.result->second.owns_lock());
        EXPECT_GE(elapsed, 300ms);
        EXPECT_LT(elapsed, 2300ms) << "the wait was not honoured";
        // The acquire the server ran after resuming took the lock for our token: given back.
        bool given_back = false;
        for (int i = 0; i < 2000 && !given_back; ++i) {
            given_back = !co_await exists("keyedpool:lock:{stalled}");
            if (!given_back) {
                co_await sleep_for(5ms);
            }
        }
        EXPECT_TRUE(given_back) << "the late grant was left to expire";
    });
}

// A grant whose reply arrives after half its lease is not handed out: it is taken again with a
// fresh lease (a new fencing token), so the guard is valid for at least half the lease.
TEST_F(FrozenServerTest, AGrantThatArrivesLateIsTakenAgainNotHandedOut) {
    auto locks = make_service();
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto warm = co_await locks->async_try_lock("warm-up-2", 10s);
        co_await warm.async_release();
        server_->pause();
        const auto requests = locks->lock_requests_sent();
        PendingLock pending;
        pending.start(*locks, "late", waiting(10s, 400ms));
        EXPECT_TRUE(co_await eventually([&] { return locks->lock_requests_sent() > requests; }));
        co_await sleep_for(300ms);  // the server is frozen: the reply cannot come sooner
        server_->resume();
        EXPECT_TRUE(co_await eventually([&] { return pending.result.has_value(); }));
        if (!pending.result) {
            co_return;
        }
        auto& [ec, guard] = *pending.result;
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_TRUE(guard.owns_lock());
        EXPECT_GE(guard.valid_until() - clock::now(), 150ms)
            << "a guard with less than half its lease left was handed out";
        EXPECT_EQ(locks->lock_requests_sent() - requests, 2u) << "taken again once";
        EXPECT_EQ(guard.fencing_token(), 2u) << "the retake is a new acquisition";
        co_await guard.async_release();
    });
}

// ---- waiters cancelled anywhere ---------------------------------------------------------------

class WaiterBookkeepingTest : public FrozenServerTest {
  protected:
    std::unique_ptr<RedisLockService> make_waiting_service() {
        redis::RedisLockServiceOptions options;
        options.connection = server_->config();
        options.recheck_interval = 1h;  // a prompt hand-off can only come from a release message
        return std::make_unique<RedisLockService>(io_.get_executor(), options);
    }

    /// The release channels with a subscriber, as the server counts them.
    asio::awaitable<std::vector<std::string>> subscribed_channels() {
        const auto reply = co_await one_command(
            server_->config(), redis::command("PUBSUB", "CHANNELS", "keyedpool:lock:*"));
        std::vector<std::string> names;
        for (const auto& element : reply.elements()) {
            names.push_back(element.text());
        }
        co_return names;
    }
};

// A waiter cancelled at each point where async_lock can suspend, one point after another (the
// io_context stepped one handler at a time, the cancellation emitted after k steps), on the same
// resource, so its channel is idle when each new waiter arrives. Before, a cancellation landing
// between "waiting" and the waiter's registration listed the idle channel twice; the stale entry
// was later dropped (unsubscribed) while a live waiter used the channel, which then missed its
// hand-off and waited for the re-check (and the idle-channel cap broke for good). Debug builds
// also assert the channel invariant after every change.
TEST_F(WaiterBookkeepingTest, AWaiterCancelledAtAnySuspensionPointLeavesTheChannelsExact) {
    auto holder = make_service();
    auto waiters = make_waiting_service();
    const std::string contended = "bookkeeping";
    std::optional<LockGuard> held;
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        held = co_await holder->async_try_lock(contended, 1h);
    });
    ASSERT_TRUE(held && held->owns_lock());

    int points = 0;
    for (int k = 0; k < 400; ++k) {
        PendingLock waiter;
        waiter.start(*waiters, contended, waiting(1h));
        bool asleep = false;  // nothing left to run: the waiter sleeps until a release
        for (int step = 0; step < k && !asleep; ++step) {
            asleep = io_.run_one_for(50ms) == 0;
        }
        waiter.signal.emit(asio::cancellation_type::terminal);
        io_.restart();
        while (!waiter.result && io_.run_one_for(10s) != 0) {
        }
        ASSERT_TRUE(waiter.result) << "a cancelled waiter did not complete (k = " << k << ")";
        if (!waiter.result->first) {
            FAIL() << "acquired a lock held elsewhere (k = " << k << ")";
        }
        EXPECT_EQ(waiter.result->first, asio::error::operation_aborted) << "k = " << k;
        points = k;
        if (asleep) {
            break;
        }
    }
    EXPECT_GT(points, 3) << "the waiter never got past its first suspension";
    RecordProperty("suspension_points", points);

    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        // A live waiter on the contended resource...
        const auto requests = waiters->lock_requests_sent();
        PendingLock live;
        live.start(*waiters, contended, waiting(10s));
        EXPECT_TRUE(co_await eventually([&] { return waiters->lock_requests_sent() > requests; }));
        // ...then more idle channels than the cap (64): each resource contended once.
        std::vector<LockGuard> blocking;
        for (int i = 0; i < 70; ++i) {
            blocking.push_back(co_await holder->async_try_lock("other-" + std::to_string(i), 1h));
        }
        std::vector<std::unique_ptr<PendingLock>> others;
        const auto before_others = waiters->lock_requests_sent();
        for (int i = 0; i < 70; ++i) {
            others.push_back(std::make_unique<PendingLock>());
            others.back()->start(*waiters, "other-" + std::to_string(i), waiting(10s));
        }
        EXPECT_TRUE(co_await eventually(
            [&] { return waiters->lock_requests_sent() >= before_others + 70; }));
        for (auto& guard : blocking) {
            co_await guard.async_release();
        }
        for (auto& other : others) {
            EXPECT_TRUE(co_await eventually([&] { return other->result.has_value(); }));
            if (other->result) {
                EXPECT_FALSE(other->result->first) << other->result->first.message();
                co_await other->result->second.async_release();
            }
        }
        // The live waiter's channel is still subscribed, and the hand-off reaches it at once.
        const auto channels = co_await subscribed_channels();
        EXPECT_NE(std::find(channels.begin(), channels.end(),
                            "keyedpool:lock:{" + contended + "}:released"),
                  channels.end())
            << "the live waiter's channel was unsubscribed";
        EXPECT_LE(channels.size(), 64u + 1) << "idle channels past the cap";
        const auto released_at = clock::now();
        co_await held->async_release();
        EXPECT_TRUE(co_await eventually([&] { return live.result.has_value(); }, 5s))
            << "the hand-off did not reach the waiter";
        if (live.result) {
            EXPECT_FALSE(live.result->first) << live.result->first.message();
            EXPECT_LT(clock::now() - released_at, 5s);
            co_await live.result->second.async_release();
        }
        EXPECT_LE((co_await subscribed_channels()).size(), 64u) << "idle channels past the cap";
    });
}

}  // namespace
}  // namespace keyedpool::test
