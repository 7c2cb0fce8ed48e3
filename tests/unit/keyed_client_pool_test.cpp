// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// KeyedClientPool on a single-threaded io_context. Time is driven by the io_context and real
// (short) timers; assertions are on counts and outcomes, never on sleeping.
#include "fake_client.hpp"

#include <keyedpool/logging.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <future>
#include <vector>

namespace keyedpool::test {
namespace {

using boost::system::error_code;

class PoolTest : public ::testing::Test {
  protected:
    void TearDown() override {
        if (pool_) {
            shutdown_and_drain();
        }
        // Every client the factory made was closed exactly once.
        EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
        EXPECT_EQ(counters_.double_closes.load(), 0);
        if (pool_) {
            auto s = pool_->stats();
            EXPECT_EQ(s.builds, s.closes);
            EXPECT_EQ(s.live_clients, 0u);
            EXPECT_EQ(s.builds, static_cast<std::uint64_t>(counters_.constructed.load()));
            EXPECT_EQ(pool_->lock_entries(), 0u);
        }
    }

    Pool& make_pool(PoolOptions options = {}) {
        pool_ = std::make_unique<Pool>(io_.get_executor(), make_factory(counters_, behaviour_),
                                       options);
        return *pool_;
    }

    void shutdown_and_drain() {
        bool done = false;
        pool_->async_shutdown([&](error_code ec) {
            EXPECT_FALSE(ec);
            done = true;
        });
        run();
        EXPECT_TRUE(done);
    }

    // Starts a get whose completion fills `out`; `slot` lets the test cancel it.
    void start_get(int key, GetOutcome& out, asio::cancellation_slot slot = {}) {
        pool_->async_get(key,
                         asio::bind_cancellation_slot(slot, [&out](error_code ec, ClientPtr c) {
                             out.done = true;
                             out.ec = ec;
                             out.client = std::move(c);
                         }));
    }

    // Runs the io_context until it has no more work.
    void run() {
        io_.restart();
        io_.run();
    }

    // Runs the io_context for `duration` of timer time (other work keeps running meanwhile).
    void run_for(std::chrono::steady_clock::duration duration) {
        io_.restart();
        io_.run_for(duration);
    }

    // Runs until `done()` is true (bounded: a failure rather than a hang).
    template <typename Predicate>
    void run_until(Predicate done, std::chrono::seconds limit = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        io_.restart();
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io_.run_one_for(10ms);
        }
        ASSERT_TRUE(done()) << "condition not reached in time";
    }

    QuietLogger quiet_;
    asio::io_context io_;
    Counters counters_;
    FactoryBehaviour behaviour_;
    std::unique_ptr<Pool> pool_;
};

// ---- single flight ----------------------------------------------------------------------------

TEST_F(PoolTest, TenThousandConcurrentGetsBuildOneClient) {
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(10'000);
    for (auto& outcome : outcomes) {
        start_get(42, outcome);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.constructed.load(), 1);
    const FakeClient* first = outcomes.front().client.get();
    ASSERT_NE(first, nullptr);
    for (const auto& outcome : outcomes) {
        ASSERT_TRUE(outcome.done);
        ASSERT_FALSE(outcome.ec) << outcome.ec.message();
        ASSERT_EQ(outcome.client.get(), first) << "a waiter got a different client";
    }
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_EQ(pool.stats().builds, 1u);
}

TEST_F(PoolTest, CoroutinesGetTheSameClientAndHitsSkipTheFactory) {
    auto& pool = make_pool();
    std::vector<ClientPtr> got;
    for (int i = 0; i < 100; ++i) {
        asio::co_spawn(
            io_, [&]() -> asio::awaitable<void> { got.push_back(co_await pool.async_get(5)); },
            asio::detached);
    }
    run();
    ASSERT_EQ(got.size(), 100u);
    for (auto& c : got) {
        EXPECT_EQ(c, got.front());
    }
    const auto hits_before = pool.stats().hits;
    asio::co_spawn(
        io_, [&]() -> asio::awaitable<void> { got.push_back(co_await pool.async_get(5)); },
        asio::detached);
    run();
    EXPECT_EQ(pool.stats().hits, hits_before + 1);
    EXPECT_EQ(got.back(), got.front());
    EXPECT_EQ(counters_.factory_calls.load(), 1);
}

// Different keys build concurrently: every one of 1,000 builds must be in flight at once before
// any of them may finish (the factory waits on a gate opened by the 1,000th call). A pool that
// serialises keys would never open the gate.
TEST_F(PoolTest, DifferentKeysBuildConcurrently) {
    asio::steady_timer gate(io_, asio::steady_timer::time_point::max());
    int entered = 0;
    pool_ = std::make_unique<Pool>(
        io_.get_executor(), [&](const int& key) -> asio::awaitable<ClientPtr> {
            counters_.factory_calls.fetch_add(1);
            if (++entered == 1000) {
                gate.cancel();
            } else {
                co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
            }
            co_return std::make_shared<FakeClient>(key, 0, counters_);
        });
    std::vector<GetOutcome> outcomes(10'000);
    for (int i = 0; i < 10'000; ++i) {
        start_get(i % 1000, outcomes[i]);
    }
    run_until([&] {
        return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.done; });
    });
    EXPECT_EQ(counters_.factory_calls.load(), 1000);
    for (int i = 0; i < 10'000; ++i) {
        ASSERT_FALSE(outcomes[i].ec);
        ASSERT_EQ(outcomes[i].client->key(), i % 1000);
    }
    EXPECT_EQ(pool_->size(), 1000u);
}

// 1,000 keys x 10 waiters with a 20 ms factory: 1,000 builds, and the whole herd is served in far
// less than the 20 s a pool that serialised builds would need (the 10 s bound leaves room for a
// loaded CI machine and sanitizers; DifferentKeysBuildConcurrently is the deterministic check).
TEST_F(PoolTest, ThousandKeysTimesTenWaitersFinishFarBelowSerialTime) {
    behaviour_.delay = 20ms;
    make_pool();
    std::vector<GetOutcome> outcomes(10'000);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 10'000; ++i) {
        start_get(i % 1000, outcomes[i]);
    }
    run();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(counters_.factory_calls.load(), 1000);
    EXPECT_EQ(counters_.max_in_flight.load() > 1, true);
    EXPECT_LT(elapsed, 10s) << "serial would be 20 s";
    for (auto& o : outcomes) {
        ASSERT_FALSE(o.ec);
    }
}

// ---- failures ---------------------------------------------------------------------------------

TEST_F(PoolTest, FactoryErrorReachesEveryWaiterAsTheSameCode) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::forbidden;
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(50);
    for (auto& o : outcomes) {
        start_get(1, o);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "waiters rebuilt after a failure (stampede)";
    for (auto& o : outcomes) {
        ASSERT_TRUE(o.done);
        EXPECT_EQ(o.ec, ResultCode::forbidden);
        EXPECT_EQ(o.client, nullptr);
    }
    EXPECT_EQ(pool.stats().build_failures, 1u);
    EXPECT_EQ(pool.size(), 0u);
}

TEST_F(PoolTest, NonSystemExceptionAndNullClientAreConnectFailed) {
    behaviour_.outcome = FactoryBehaviour::Outcome::runtime_error;
    PoolOptions options;
    options.backoff.initial = 0s;  // no backoff: every get retries
    make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    run();
    EXPECT_EQ(a.ec, ResultCode::connect_failed);
    behaviour_.outcome = FactoryBehaviour::Outcome::null;
    start_get(1, b);
    run();
    EXPECT_EQ(b.ec, ResultCode::connect_failed);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

TEST_F(PoolTest, ConnectTimeoutCancelsTheFactoryAndFailsEveryWaiter) {
    behaviour_.delay = 10s;
    PoolOptions options;
    options.connect_timeout = 20ms;
    auto& pool = make_pool(options);
    std::vector<GetOutcome> outcomes(5);
    for (auto& o : outcomes) {
        start_get(1, o);
    }
    run();
    for (auto& o : outcomes) {
        EXPECT_EQ(o.ec, ResultCode::timeout);
    }
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 1) << "the slow factory was left running";
    EXPECT_EQ(pool.stats().build_failures, 1u);
}

// A factory that ignores cancellation and produces a client after the timeout: that client must
// be closed, not leaked.
TEST_F(PoolTest, ClientProducedAfterTimeoutIsClosed) {
    behaviour_.delay = 60ms;
    behaviour_.ignore_cancellation = true;
    PoolOptions options;
    options.connect_timeout = 10ms;
    auto& pool = make_pool(options);
    GetOutcome o;
    start_get(1, o);
    run();
    EXPECT_EQ(o.ec, ResultCode::timeout);
    EXPECT_EQ(counters_.constructed.load(), 1);
    EXPECT_EQ(counters_.closed.load(), 1);
    EXPECT_EQ(pool.size(), 0u);
}

TEST_F(PoolTest, BackoffFailsFastThenTheFirstGetAfterTheDeadlineRebuilds) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::server_busy;
    PoolOptions options;
    options.backoff.initial = 100ms;
    options.backoff.jitter = 0;
    auto& pool = make_pool(options);
    GetOutcome first, during, after;
    start_get(9, first);
    run();
    EXPECT_EQ(first.ec, ResultCode::server_busy);

    const auto failed_at = std::chrono::steady_clock::now();
    start_get(9, during);
    run();
    EXPECT_EQ(during.ec, ResultCode::backoff);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "a get during backoff called the factory";
    EXPECT_TRUE(is_transient(during.ec));
    EXPECT_EQ(pool.try_get(9), nullptr);

    asio::steady_timer wait(io_, failed_at + 110ms);  // past the deadline
    wait.async_wait([&](error_code) {
        behaviour_.outcome = FactoryBehaviour::Outcome::client;
        start_get(9, after);
    });
    run();
    EXPECT_FALSE(after.ec) << after.ec.message();
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    ASSERT_NE(after.client, nullptr);
}

TEST_F(PoolTest, BackoffGrowsWithConsecutiveFailures) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::io_error;
    PoolOptions options;
    options.backoff.initial = 20ms;
    options.backoff.multiplier = 4;
    options.backoff.jitter = 0;
    make_pool(options);
    GetOutcome first, second, probe, third;
    start_get(1, first);
    run();  // failure #1 -> 20 ms
    asio::steady_timer t1(io_, 25ms);
    t1.async_wait([&](error_code) { start_get(1, second); });
    run();  // failure #2 -> 80 ms
    EXPECT_EQ(second.ec, ResultCode::io_error);
    asio::steady_timer t2(io_, 40ms);  // > 20 ms but < 80 ms
    t2.async_wait([&](error_code) { start_get(1, probe); });
    run();
    EXPECT_EQ(probe.ec, ResultCode::backoff) << "backoff did not grow";
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

// ---- health -----------------------------------------------------------------------------------

TEST_F(PoolTest, UnhealthyClientIsClosedAndRebuiltOnce) {
    auto& pool = make_pool();
    GetOutcome first;
    start_get(3, first);
    run();
    ASSERT_NE(first.client, nullptr);
    first.client->break_connection();
    EXPECT_EQ(pool.try_get(3), nullptr) << "try_get returned an unhealthy client";

    std::vector<GetOutcome> outcomes(20);
    for (auto& o : outcomes) {
        start_get(3, o);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_TRUE(first.client->closed());
    for (auto& o : outcomes) {
        ASSERT_FALSE(o.ec);
        EXPECT_NE(o.client, first.client);
        EXPECT_EQ(o.client, outcomes.front().client);
    }
    EXPECT_EQ(counters_.closed.load(), 1);
}

TEST_F(PoolTest, ClientBornUnhealthyFailsItsWaitersOnceAndIsClosed) {
    behaviour_.outcome = FactoryBehaviour::Outcome::unhealthy_client;
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(10);
    for (auto& o : outcomes) {
        start_get(3, o);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "each waiter rebuilt a broken client";
    for (auto& o : outcomes) {
        EXPECT_EQ(o.ec, ResultCode::unhealthy);
    }
    EXPECT_EQ(counters_.closed.load(), 1);
    EXPECT_EQ(pool.size(), 0u);
}

// ---- cancellation -----------------------------------------------------------------------------

TEST_F(PoolTest, CancellingOneWaiterLeavesTheBuildForTheOthers) {
    behaviour_.delay = 30ms;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome builder, victim, other;
    start_get(1, builder);
    start_get(1, victim, cancel.slot());
    start_get(1, other);
    io_.poll();
    cancel.emit(asio::cancellation_type::terminal);
    run();
    EXPECT_EQ(victim.ec, asio::error::operation_aborted);
    EXPECT_FALSE(builder.ec);
    EXPECT_FALSE(other.ec);
    EXPECT_EQ(builder.client, other.client);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 0);
}

TEST_F(PoolTest, CancellingTheGetThatStartedTheBuildLeavesTheBuildToTheOthers) {
    // The build belongs to the key, not to the first get: cancelling that get must neither cancel
    // the factory nor make the others build again.
    behaviour_.delay = 30ms;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome first, next, last;
    start_get(1, first, cancel.slot());
    start_get(1, next);
    start_get(1, last);
    run_until([&] { return counters_.factory_calls.load() == 1; });
    cancel.emit(asio::cancellation_type::terminal);
    run_until([&] { return first.done; });
    EXPECT_EQ(first.ec, asio::error::operation_aborted);
    EXPECT_FALSE(next.done) << "the others keep waiting for the build";
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 0);
    EXPECT_FALSE(next.ec);
    EXPECT_FALSE(last.ec);
    EXPECT_EQ(next.client, last.client);
}

TEST_F(PoolTest, CancellingEveryWaiterCancelsTheBuild) {
    behaviour_.delay = 10s;
    make_pool();
    asio::cancellation_signal cancel_a, cancel_b;
    GetOutcome a, b;
    start_get(1, a, cancel_a.slot());
    start_get(1, b, cancel_b.slot());
    run_until([&] { return counters_.factory_calls.load() == 1; });
    cancel_a.emit(asio::cancellation_type::terminal);
    cancel_b.emit(asio::cancellation_type::terminal);
    run();  // would run for 10 s if the abandoned build went on
    EXPECT_EQ(a.ec, asio::error::operation_aborted);
    EXPECT_EQ(b.ec, asio::error::operation_aborted);
    EXPECT_EQ(counters_.factory_cancelled.load(), 1);
    EXPECT_EQ(pool_->lock_entries(), 0u);
    EXPECT_EQ(pool_->stats().waiters, 0u);
}

TEST_F(PoolTest, AGetJoiningAnAbandonedBuildIsServedByARestartedBuild) {
    // A factory that finishes its 20 ms even when cancelled keeps the abandoned build open long
    // enough for a new get to join it deterministically.
    behaviour_.delay = 20ms;
    behaviour_.ignore_cancellation = true;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome abandoned, late;
    start_get(1, abandoned, cancel.slot());
    run_until([&] { return counters_.factory_calls.load() == 1; });
    // The last waiter leaves, so the build is cancelled; a new get joins before the build ended.
    // It must not inherit operation_aborted: the build starts again for it.
    cancel.emit(asio::cancellation_type::terminal);
    run_for(5ms);
    EXPECT_EQ(abandoned.ec, asio::error::operation_aborted);
    EXPECT_EQ(pool_->lock_entries(), 1u) << "the abandoned build should still be ending";
    start_get(1, late);
    run();
    EXPECT_FALSE(late.ec) << late.ec.message();
    ASSERT_NE(late.client, nullptr);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_EQ(late.client->serial(), 2) << "the abandoned build's client was closed, not served";
}

TEST_F(PoolTest, AThrowingHandlerDoesNotLoseTheWaitersCompletedWithIt) {
    // Waiters of one build are resumed together; an exception from one handler must leave the
    // rest to be completed, not dropped.
    make_pool();
    int completed = 0;
    pool_->async_get(1, [&](error_code, ClientPtr) {
        ++completed;
        throw std::runtime_error("handler failed");
    });
    for (int i = 0; i < 4; ++i) {
        pool_->async_get(1, [&](error_code ec, ClientPtr c) {
            EXPECT_FALSE(ec);
            EXPECT_NE(c, nullptr);
            ++completed;
        });
    }
    io_.restart();
    EXPECT_THROW(io_.run(), std::runtime_error);
    run_until([&] { return completed == 5; }, std::chrono::seconds(2));
    EXPECT_EQ(counters_.factory_calls.load(), 1);
}

// ---- shutdown ---------------------------------------------------------------------------------

TEST_F(PoolTest, ShutdownFailsWaitersCancelsTheBuildAndClosesEverything) {
    behaviour_.delay = 10s;
    auto& pool = make_pool();
    // One cached client on key 1 (built fast), one slow build with waiters on key 2.
    behaviour_.delay = 1ms;
    GetOutcome cached;
    start_get(1, cached);
    run();
    ASSERT_FALSE(cached.ec);
    behaviour_.delay = 10s;
    std::vector<GetOutcome> waiters(5);
    for (auto& o : waiters) {
        start_get(2, o);
    }
    run_until([&] { return counters_.factory_calls.load() == 2; });

    bool shut = false;
    pool.async_shutdown([&](error_code ec) {
        EXPECT_FALSE(ec);
        shut = true;
    });
    run();
    EXPECT_TRUE(shut);
    for (auto& o : waiters) {
        EXPECT_EQ(o.ec, ResultCode::shutting_down);
    }
    EXPECT_EQ(counters_.factory_cancelled.load(), 1);
    EXPECT_TRUE(cached.client->closed());
    EXPECT_EQ(pool.size(), 0u);

    GetOutcome late;
    start_get(1, late);
    run();
    EXPECT_EQ(late.ec, ResultCode::shutting_down);
    EXPECT_EQ(pool.try_get(1), nullptr);
}

TEST_F(PoolTest, DestroyingThePoolMidFlightIsSafe) {
    behaviour_.delay = 10s;
    make_pool();
    std::vector<GetOutcome> waiters(3);
    for (auto& o : waiters) {
        start_get(1, o);
    }
    run_until([&] { return counters_.factory_calls.load() == 1; });
    pool_.reset();  // no shutdown
    run();
    for (auto& o : waiters) {
        EXPECT_EQ(o.ec, ResultCode::shutting_down);
    }
}

TEST_F(PoolTest, ShutdownWaitsForARudeFactoryAndClosesItsClient) {
    behaviour_.delay = 50ms;
    behaviour_.ignore_cancellation = true;
    auto& pool = make_pool();
    GetOutcome waiter;
    start_get(1, waiter);
    run_until([&] { return counters_.factory_calls.load() == 1; });
    bool shut = false;
    pool.async_shutdown([&](error_code) {
        shut = true;
        // By the time shutdown completes, the late client has been closed.
        EXPECT_EQ(counters_.constructed.load(), 1);
        EXPECT_EQ(counters_.closed.load(), 1);
    });
    run();
    EXPECT_TRUE(shut);
    EXPECT_EQ(waiter.ec, ResultCode::shutting_down);
}

// ---- limits -----------------------------------------------------------------------------------

TEST_F(PoolTest, MaxClientsFailsWithPoolExhaustedAfterWaitTimeout) {
    PoolOptions options;
    options.max_clients = 2;
    options.wait_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome a, b, c;
    start_get(1, a);
    start_get(2, b);
    run();
    ASSERT_FALSE(a.ec);
    ASSERT_FALSE(b.ec);
    start_get(3, c);
    run();
    EXPECT_EQ(c.ec, ResultCode::pool_exhausted);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_EQ(pool.stats().live_clients, 2u);
    // Cached keys are still served at the cap.
    EXPECT_NE(pool.try_get(1), nullptr);
}

TEST_F(PoolTest, MaxClientsWaiterGetsTheSlotFreedByIdleEviction) {
    PoolOptions options;
    options.max_clients = 1;
    options.wait_timeout = 5s;
    options.idle_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    run_until([&] { return a.done; });
    ASSERT_FALSE(a.ec);
    a.client.reset();  // nobody holds key 1's client any more: it can go idle
    start_get(2, b);
    run_until([&] { return b.done; });
    EXPECT_FALSE(b.ec) << b.ec.message();
    EXPECT_EQ(pool.stats().evictions, 1u);
    EXPECT_EQ(pool.stats().live_clients, 1u);
    EXPECT_EQ(pool.size(), 1u);
}

TEST_F(PoolTest, InvalidateFreesASlotForAWaiter) {
    PoolOptions options;
    options.max_clients = 1;
    options.wait_timeout = 5s;
    auto& pool = make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    run();
    start_get(2, b);
    io_.poll();
    EXPECT_FALSE(b.done);
    EXPECT_TRUE(pool.invalidate(1));
    run();
    EXPECT_FALSE(b.ec);
    EXPECT_TRUE(a.client->closed());
}

TEST_F(PoolTest, IdleClientsAreEvictedAndTheSweeperStops) {
    PoolOptions options;
    options.idle_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome held, dropped;
    start_get(1, held);
    start_get(2, dropped);
    run_until([&] { return held.done && dropped.done; });
    dropped.client.reset();
    // Not held elsewhere and unused: evicted. Still held by the test: kept.
    run_until([&] { return pool.stats().evictions == 1; });
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_NE(pool.try_get(1), nullptr);
    EXPECT_FALSE(held.client->closed());
    held.client.reset();
    run();  // returns only once the sweeper evicted the last client and stopped
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.stats().evictions, 2u);
}

// ---- API surface ------------------------------------------------------------------------------

TEST_F(PoolTest, CallbacksAreNeverCompletedInline) {
    auto& pool = make_pool();
    GetOutcome miss;
    start_get(1, miss);
    EXPECT_FALSE(miss.done);
    run();
    ASSERT_FALSE(miss.ec);
    GetOutcome hit;
    start_get(1, hit);
    EXPECT_FALSE(hit.done) << "a hit completed inside async_get";
    run();
    EXPECT_TRUE(hit.done);
    EXPECT_EQ(hit.client, miss.client);
    EXPECT_GE(pool.stats().hits, 1u);
}

TEST_F(PoolTest, WorksWithEveryCompletionToken) {
    auto& pool = make_pool();
    // use_future
    auto future = pool.async_get(1, asio::use_future);
    run();
    auto from_future = future.get();
    ASSERT_NE(from_future, nullptr);
    // deferred
    auto op = pool.async_get(1, asio::deferred);
    ClientPtr from_deferred;
    std::move(op)([&](error_code ec, ClientPtr c) {
        EXPECT_FALSE(ec);
        from_deferred = c;
    });
    run();
    EXPECT_EQ(from_deferred, from_future);
    // as_tuple(use_awaitable), and errors as exceptions with plain co_await
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::auth_failed;
    error_code tuple_ec;
    error_code thrown;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            auto [ec, client] = co_await pool.async_get(2, asio::as_tuple(asio::use_awaitable));
            tuple_ec = ec;
            EXPECT_EQ(client, nullptr);
            try {
                co_await pool.async_get(2);
            } catch (const boost::system::system_error& e) {
                thrown = e.code();
            }
        },
        asio::detached);
    run();
    EXPECT_EQ(tuple_ec, ResultCode::auth_failed);
    EXPECT_EQ(thrown, ResultCode::backoff);
}

TEST_F(PoolTest, TryGetNeverBuilds) {
    auto& pool = make_pool();
    EXPECT_EQ(pool.try_get(1), nullptr);
    EXPECT_EQ(counters_.factory_calls.load(), 0);
    GetOutcome o;
    start_get(1, o);
    run();
    EXPECT_EQ(pool.try_get(1), o.client);
}

TEST_F(PoolTest, InvalidateClosesAndTheNextGetRebuilds) {
    auto& pool = make_pool();
    GetOutcome first, second;
    start_get(1, first);
    run();
    EXPECT_TRUE(pool.invalidate(1));
    EXPECT_TRUE(first.client->closed());
    EXPECT_FALSE(pool.invalidate(1));
    start_get(1, second);
    run();
    EXPECT_NE(second.client, first.client);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

TEST_F(PoolTest, InvalidateClearsBackoff) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    auto& pool = make_pool();
    GetOutcome failed, rebuilt;
    start_get(1, failed);
    run();
    EXPECT_EQ(failed.ec, ResultCode::forbidden);
    EXPECT_TRUE(pool.invalidate(1));
    behaviour_.outcome = FactoryBehaviour::Outcome::client;
    start_get(1, rebuilt);
    run();
    EXPECT_FALSE(rebuilt.ec);
}

TEST_F(PoolTest, CloseThatThrowsStillCountsAsClosedOnce) {
    struct Throwing {
        static bool is_healthy(const FakeClient&) { return true; }
        static void close(FakeClient& c) {
            c.close();
            throw std::runtime_error("close failed");
        }
    };
    KeyedClientPool<int, FakeClient, Throwing> pool(io_.get_executor(),
                                                    make_factory(counters_, behaviour_));
    pool.async_get(1, [](error_code, ClientPtr) {});
    run();
    pool.async_shutdown([](error_code) {});
    run();
    EXPECT_EQ(pool.stats().closes, 1u);
}

}  // namespace
}  // namespace keyedpool::test
