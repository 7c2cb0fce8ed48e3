// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// KeyedClientPool on a single-threaded io_context and virtual time: timers (the factory's delay,
// connect and wait timeouts, backoff, idle eviction, shutdown's bound) fire only when the test
// advances time, so every interleaving here is driven, never waited for. Assertions are on counts
// and outcomes, never on wall-clock time.
#include "fake_client.hpp"
#include "virtual_io.hpp"

#include <keyedpool/logging.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

using boost::system::error_code;

// Every test runs twice: builds on the shards' strands (the default) and on the pool's executor
// (`build_on_strand = false`).
class PoolTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        FixedJitter::sample() = 0.5;  // the middle of the jitter range: the nominal delay
    }

    void TearDown() override {
        if (pool_) {
            shutdown_and_drain();
        }
        // Whatever the test left running (a rude factory's timer) ends in virtual time.
        EXPECT_TRUE(vio_.drain(std::chrono::hours(1))) << "a timer is still pending";
        // Every client the factory made was closed exactly once.
        EXPECT_EQ(counters_.constructed.load(), counters_.closed.load());
        EXPECT_EQ(counters_.double_closes.load(), 0);
        if (pool_) {
            auto s = pool_->stats();
            EXPECT_EQ(s.builds, s.closes);
            EXPECT_EQ(s.live_clients, 0u);
            EXPECT_EQ(s.builds_in_progress, 0u);
            EXPECT_EQ(s.builds, static_cast<std::uint64_t>(counters_.constructed.load()));
            EXPECT_EQ(pool_->open_flights(), 0u);
        }
    }

    VirtualPool& make_pool(PoolOptions options = {}) {
        options.build_on_strand = GetParam();
        pool_ = std::make_unique<VirtualPool>(
            io_.get_executor(), make_factory<VirtualTimer>(counters_, behaviour_), options);
        return *pool_;
    }

    void shutdown_and_drain() {
        bool done = false;
        pool_->async_shutdown([&](error_code) { done = true; });
        vio_.drain(std::chrono::hours(1));
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

    void run() { vio_.run(); }
    void advance(std::chrono::steady_clock::duration step) { vio_.advance(step); }

    QuietLogger quiet_;
    VirtualIo vio_;  // resets virtual time
    asio::io_context& io_ = vio_.context();
    Counters counters_;
    FactoryBehaviour behaviour_;
    std::unique_ptr<VirtualPool> pool_;
};

bool all_done(const std::vector<GetOutcome>& outcomes) {
    return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.done; });
}

// ---- single flight ----------------------------------------------------------------------------

TEST_P(PoolTest, TenThousandConcurrentGetsBuildOneClient) {
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(10'000);
    for (auto& outcome : outcomes) {
        start_get(42, outcome);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_FALSE(outcomes.front().done) << "completed before the factory's 1 ms";
    advance(1ms);
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

TEST_P(PoolTest, CoroutinesGetTheSameClientAndHitsSkipTheFactory) {
    auto& pool = make_pool();
    std::vector<ClientPtr> got;
    for (int i = 0; i < 100; ++i) {
        asio::co_spawn(
            io_, [&]() -> asio::awaitable<void> { got.push_back(co_await pool.async_get(5)); },
            asio::detached);
    }
    advance(1ms);
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

// Different keys build concurrently: 1,000 keys x 10 waiters with a 20 ms factory are all served
// when virtual time reaches 20 ms. A pool that serialised builds would have finished one key.
TEST_P(PoolTest, ThousandKeysTimesTenWaitersAreServedAfterOneFactoryDelay) {
    behaviour_.delay = 20ms;
    make_pool();
    std::vector<GetOutcome> outcomes(10'000);
    for (int i = 0; i < 10'000; ++i) {
        start_get(i % 1000, outcomes[i]);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 1000);
    EXPECT_EQ(counters_.max_in_flight.load(), 1000) << "builds of different keys waited";
    advance(19ms);
    EXPECT_TRUE(std::none_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.done; }));
    advance(1ms);
    ASSERT_TRUE(all_done(outcomes));
    for (int i = 0; i < 10'000; ++i) {
        ASSERT_FALSE(outcomes[i].ec);
        ASSERT_EQ(outcomes[i].client->key(), i % 1000);
    }
    EXPECT_EQ(pool_->size(), 1000u);
}

// ---- failures ---------------------------------------------------------------------------------

TEST_P(PoolTest, FactoryErrorReachesEveryWaiterAsTheSameCode) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::forbidden;
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(50);
    for (auto& o : outcomes) {
        start_get(1, o);
    }
    advance(1ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "waiters rebuilt after a failure (stampede)";
    for (auto& o : outcomes) {
        ASSERT_TRUE(o.done);
        EXPECT_EQ(o.ec, ResultCode::forbidden);
        EXPECT_EQ(o.client, nullptr);
    }
    EXPECT_EQ(pool.stats().build_failures, 1u);
    EXPECT_EQ(pool.size(), 0u);
}

// A get that looked before a build failed but reached the shard lock after it: it gets that
// build's error, not a build of its own (one result per build).
TEST_P(PoolTest, AGetThatArrivesAsABuildFailsGetsThatError) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::auth_failed;
    PoolOptions options;
    options.backoff.initial = 0s;  // no backoff: only the "newer failure" rule stops a rebuild
    make_pool(options);
    GetOutcome first;
    start_get(1, first);
    run();
    // This coroutine probes (a miss) now, and joins after the failure is recorded.
    error_code late_ec;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            auto [ec, client] = co_await pool_->async_get(1, asio::as_tuple(asio::use_awaitable));
            late_ec = ec;
        },
        asio::detached);
    advance(1ms);
    EXPECT_EQ(first.ec, ResultCode::auth_failed);
    EXPECT_EQ(late_ec, ResultCode::auth_failed);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
}

TEST_P(PoolTest, NonSystemExceptionAndNullClientAreConnectFailed) {
    behaviour_.outcome = FactoryBehaviour::Outcome::runtime_error;
    PoolOptions options;
    options.backoff.initial = 0s;  // no backoff: every get retries
    make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    advance(1ms);
    EXPECT_EQ(a.ec, ResultCode::connect_failed);
    behaviour_.outcome = FactoryBehaviour::Outcome::null;
    start_get(1, b);
    advance(1ms);
    EXPECT_EQ(b.ec, ResultCode::connect_failed);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

TEST_P(PoolTest, ConnectTimeoutCancelsTheFactoryAndFailsEveryWaiter) {
    behaviour_.delay = 10s;
    PoolOptions options;
    options.connect_timeout = 20ms;
    auto& pool = make_pool(options);
    std::vector<GetOutcome> outcomes(5);
    for (auto& o : outcomes) {
        start_get(1, o);
    }
    advance(19ms);
    EXPECT_FALSE(outcomes.front().done);
    advance(1ms);
    for (auto& o : outcomes) {
        EXPECT_EQ(o.ec, ResultCode::timeout);
    }
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 1) << "the slow factory was left running";
    EXPECT_EQ(pool.stats().build_failures, 1u);
    EXPECT_EQ(pool.stats().builds_in_progress, 0u);
}

// A factory that ignores cancellation: its waiters still fail at connect_timeout (not when the
// factory finally returns), and the client it produces late is closed, not cached or leaked.
TEST_P(PoolTest, ConnectTimeoutBoundsTheWaitersOfAFactoryThatIgnoresCancellation) {
    behaviour_.delay = 1500ms;
    behaviour_.ignore_cancellation = true;
    PoolOptions options;
    options.connect_timeout = 100ms;
    auto& pool = make_pool(options);
    std::vector<GetOutcome> outcomes(3);
    for (auto& o : outcomes) {
        start_get(1, o);
    }
    advance(100ms);
    for (auto& o : outcomes) {
        ASSERT_TRUE(o.done) << "a waiter outlived connect_timeout";
        EXPECT_EQ(o.ec, ResultCode::timeout);
    }
    EXPECT_EQ(pool.stats().builds_in_progress, 1u) << "the rude factory still runs";
    EXPECT_EQ(pool.open_flights(), 0u);
    advance(1400ms);
    EXPECT_EQ(counters_.constructed.load(), 1);
    EXPECT_EQ(counters_.closed.load(), 1) << "the late client was not closed";
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.stats().builds_in_progress, 0u);
}

// One timer serves the connect timeouts of a shard's builds: each build still times out exactly
// connect_timeout after its own factory call started, a build that ends early leaves the others'
// deadlines alone, and once nothing builds no timer is left pending.
TEST_P(PoolTest, EachBuildTimesOutAtItsOwnConnectDeadline) {
    behaviour_.delay = 1s;
    behaviour_.ignore_cancellation = true;
    PoolOptions options;
    options.connect_timeout = 20ms;
    make_pool(options);
    // Keys 0, 16, 32: the same shard or not, each is timed on its own.
    GetOutcome a, b, c;
    start_get(0, a);
    advance(5ms);
    start_get(16, b);
    advance(5ms);
    start_get(32, c);
    advance(9ms);  // t = 19 ms
    EXPECT_FALSE(a.done);
    advance(1ms);  // t = 20 ms: a's deadline
    EXPECT_EQ(a.ec, ResultCode::timeout);
    EXPECT_FALSE(b.done);
    advance(5ms);  // t = 25 ms
    EXPECT_EQ(b.ec, ResultCode::timeout);
    EXPECT_FALSE(c.done);
    advance(5ms);  // t = 30 ms
    EXPECT_EQ(c.ec, ResultCode::timeout);
    advance(1s);  // the rude factories return; their clients are closed
    EXPECT_EQ(counters_.closed.load(), 3);
    EXPECT_EQ(VirtualTime::pending(), 0u) << "a timer outlived the builds";
}

TEST_P(PoolTest, ABuildThatEndsEarlyLeavesTheOtherDeadlinesAlone) {
    PoolOptions options;
    options.connect_timeout = 20ms;
    make_pool(options);
    behaviour_.delay = 2ms;
    GetOutcome fast, slow;
    start_get(0, fast);
    run();
    behaviour_.delay = 1s;
    start_get(16, slow);
    advance(2ms);
    EXPECT_FALSE(fast.ec) << "the fast build succeeds before its deadline";
    advance(17ms);  // t = 19 ms
    EXPECT_FALSE(slow.done);
    advance(1ms);  // t = 20 ms: the slow build's deadline (20 ms after it started)
    EXPECT_EQ(slow.ec, ResultCode::timeout);
    EXPECT_EQ(VirtualTime::pending(), 0u);
}

TEST_P(PoolTest, BackoffFailsFastThenTheFirstGetAfterTheDeadlineRebuilds) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::server_busy;
    PoolOptions options;
    options.backoff.initial = 100ms;
    options.backoff.jitter = 0;
    auto& pool = make_pool(options);
    GetOutcome first, during, after;
    start_get(9, first);
    advance(1ms);
    EXPECT_EQ(first.ec, ResultCode::server_busy);

    advance(99ms);  // 1 ns before the deadline
    start_get(9, during);
    run();
    EXPECT_EQ(during.ec, ResultCode::backoff);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "a get during backoff called the factory";
    EXPECT_TRUE(is_transient(during.ec));
    EXPECT_EQ(pool.try_get(9), nullptr);

    advance(1ms);  // at the deadline
    behaviour_.outcome = FactoryBehaviour::Outcome::client;
    start_get(9, after);
    advance(1ms);
    EXPECT_FALSE(after.ec) << after.ec.message();
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    ASSERT_NE(after.client, nullptr);
}

TEST_P(PoolTest, BackoffGrowsWithConsecutiveFailures) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.error = ResultCode::io_error;
    behaviour_.delay = 0ms;
    PoolOptions options;
    options.backoff.initial = 20ms;
    options.backoff.multiplier = 4;
    options.backoff.jitter = 0;
    make_pool(options);
    GetOutcome first, second, during, third;
    start_get(1, first);
    run();  // failure #1 -> 20 ms
    EXPECT_EQ(first.ec, ResultCode::io_error);
    advance(20ms);
    start_get(1, second);
    run();  // failure #2 -> 80 ms
    EXPECT_EQ(second.ec, ResultCode::io_error);
    advance(79ms);
    start_get(1, during);
    run();
    EXPECT_EQ(during.ec, ResultCode::backoff) << "backoff did not grow";
    advance(1ms);
    start_get(1, third);
    run();
    EXPECT_EQ(third.ec, ResultCode::io_error);
    EXPECT_EQ(counters_.factory_calls.load(), 3);
}

// The jitter comes from the time traits: the lowest sample shortens the delay by `jitter`.
TEST_P(PoolTest, BackoffJitterComesFromTheInjectedSource) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    behaviour_.delay = 0ms;
    PoolOptions options;
    options.backoff.initial = 100ms;
    options.backoff.jitter = 0.5;
    FixedJitter::sample() = 0.0;  // factor 1 - 0.5: 50 ms
    make_pool(options);
    GetOutcome first, during, after;
    start_get(1, first);
    run();
    advance(49ms);
    start_get(1, during);
    run();
    EXPECT_EQ(during.ec, ResultCode::backoff);
    advance(1ms);
    start_get(1, after);
    run();
    EXPECT_EQ(after.ec, ResultCode::forbidden) << "50 ms after the failure the key rebuilds";
}

// ---- health -----------------------------------------------------------------------------------

TEST_P(PoolTest, UnhealthyClientIsClosedAndRebuiltOnce) {
    auto& pool = make_pool();
    GetOutcome first;
    start_get(3, first);
    advance(1ms);
    ASSERT_NE(first.client, nullptr);
    first.client->break_connection();
    EXPECT_EQ(pool.try_get(3), nullptr) << "try_get returned an unhealthy client";

    std::vector<GetOutcome> outcomes(20);
    for (auto& o : outcomes) {
        start_get(3, o);
    }
    advance(1ms);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_TRUE(first.client->closed());
    for (auto& o : outcomes) {
        ASSERT_FALSE(o.ec);
        EXPECT_NE(o.client, first.client);
        EXPECT_EQ(o.client, outcomes.front().client);
    }
    EXPECT_EQ(counters_.closed.load(), 1);
}

TEST_P(PoolTest, ClientBornUnhealthyFailsItsWaitersOnceAndIsClosed) {
    behaviour_.outcome = FactoryBehaviour::Outcome::unhealthy_client;
    auto& pool = make_pool();
    std::vector<GetOutcome> outcomes(10);
    for (auto& o : outcomes) {
        start_get(3, o);
    }
    advance(1ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "each waiter rebuilt a broken client";
    for (auto& o : outcomes) {
        EXPECT_EQ(o.ec, ResultCode::unhealthy);
    }
    EXPECT_EQ(counters_.closed.load(), 1);
    EXPECT_EQ(pool.size(), 0u);
}

// ---- cancellation -----------------------------------------------------------------------------

TEST_P(PoolTest, CancellingOneWaiterLeavesTheBuildForTheOthers) {
    behaviour_.delay = 30ms;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome builder, victim, other;
    start_get(1, builder);
    start_get(1, victim, cancel.slot());
    start_get(1, other);
    run();
    cancel.emit(asio::cancellation_type::terminal);
    run();
    EXPECT_EQ(victim.ec, asio::error::operation_aborted);
    EXPECT_FALSE(builder.done);
    advance(30ms);
    EXPECT_FALSE(builder.ec);
    EXPECT_FALSE(other.ec);
    EXPECT_EQ(builder.client, other.client);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 0);
}

TEST_P(PoolTest, CancellingTheGetThatStartedTheBuildLeavesTheBuildToTheOthers) {
    // The build belongs to the key, not to the first get: cancelling that get must neither cancel
    // the factory nor make the others build again.
    behaviour_.delay = 30ms;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome first, next, last;
    start_get(1, first, cancel.slot());
    start_get(1, next);
    start_get(1, last);
    advance(10ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    cancel.emit(asio::cancellation_type::terminal);
    run();
    EXPECT_EQ(first.ec, asio::error::operation_aborted);
    EXPECT_FALSE(next.done) << "the others keep waiting for the build";
    advance(20ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    EXPECT_EQ(counters_.factory_cancelled.load(), 0);
    EXPECT_FALSE(next.ec);
    EXPECT_FALSE(last.ec);
    EXPECT_EQ(next.client, last.client);
}

TEST_P(PoolTest, CancellingEveryWaiterCancelsTheBuild) {
    behaviour_.delay = 10s;
    make_pool();
    asio::cancellation_signal cancel_a, cancel_b;
    GetOutcome a, b;
    start_get(1, a, cancel_a.slot());
    start_get(1, b, cancel_b.slot());
    advance(1ms);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
    cancel_a.emit(asio::cancellation_type::terminal);
    run();
    EXPECT_EQ(counters_.factory_cancelled.load(), 0) << "one waiter left, the build goes on";
    cancel_b.emit(asio::cancellation_type::terminal);
    run();  // no time passes: the factory was cancelled, not run to its 10 s
    EXPECT_EQ(a.ec, asio::error::operation_aborted);
    EXPECT_EQ(b.ec, asio::error::operation_aborted);
    EXPECT_EQ(counters_.factory_cancelled.load(), 1);
    EXPECT_EQ(pool_->open_flights(), 0u);
    EXPECT_EQ(pool_->stats().waiters, 0u);
    EXPECT_EQ(pool_->stats().builds_in_progress, 0u);
    EXPECT_EQ(pool_->stats().build_failures, 0u) << "an abandoned build is not a failure";
}

// Every waiter left while a factory that ignores cancellation still runs; a new get for the key
// is served by a new build at once, and the old build's late client is closed, never served.
TEST_P(PoolTest, AGetAfterEveryWaiterLeftIsServedByANewBuild) {
    behaviour_.delay = 20ms;
    behaviour_.ignore_cancellation = true;
    make_pool();
    asio::cancellation_signal cancel;
    GetOutcome abandoned, late;
    start_get(1, abandoned, cancel.slot());
    advance(5ms);
    cancel.emit(asio::cancellation_type::terminal);
    run();
    EXPECT_EQ(abandoned.ec, asio::error::operation_aborted);
    EXPECT_EQ(pool_->open_flights(), 0u);
    start_get(1, late);
    advance(15ms);  // the abandoned factory returns: its client is closed
    EXPECT_EQ(counters_.closed.load(), 1);
    EXPECT_FALSE(late.done);
    advance(5ms);  // the new build's 20 ms
    EXPECT_FALSE(late.ec) << late.ec.message();
    ASSERT_NE(late.client, nullptr);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_EQ(late.client->serial(), 2) << "the abandoned build's client was served";
}

// A get cancelled at every possible step of its build (after k handlers ran, for each k until
// the build is over): it completes exactly once, with the client or with operation_aborted, and
// nothing leaks (checked in TearDown). Guards the handover between the build's end, which takes
// the waiters under the shard lock, and a cancellation arriving meanwhile.
TEST_P(PoolTest, ACancellationAtAnyStepOfTheBuildCompletesTheGetOnce) {
    behaviour_.delay = 0ms;
    make_pool();
    int aborted = 0, served = 0;
    for (int k = 0; k < 40; ++k) {
        asio::cancellation_signal cancel;
        int completions = 0;
        error_code got;
        ClientPtr client;
        pool_->async_get(
            k, asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, ClientPtr c) {
                ++completions;
                got = ec;
                client = std::move(c);
            }));
        io_.restart();
        for (int step = 0; step < k && io_.poll_one() != 0; ++step) {
        }
        if (completions == 0) {
            cancel.emit(asio::cancellation_type::terminal);
        }
        run();
        ASSERT_EQ(completions, 1) << "cancelled after " << k << " steps";
        if (got) {
            EXPECT_EQ(got, asio::error::operation_aborted);
            ++aborted;
        } else {
            EXPECT_NE(client, nullptr);
            ++served;
        }
    }
    EXPECT_GT(aborted, 0);
    EXPECT_GT(served, 0);
}

TEST_P(PoolTest, AThrowingHandlerDoesNotLoseTheWaitersCompletedWithIt) {
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
    run();
    EXPECT_THROW(advance(1ms), std::runtime_error);
    run();
    EXPECT_EQ(completed, 5);
    EXPECT_EQ(counters_.factory_calls.load(), 1);
}

// ---- shutdown ---------------------------------------------------------------------------------

TEST_P(PoolTest, ShutdownFailsWaitersCancelsTheBuildAndClosesEverything) {
    auto& pool = make_pool();
    // One cached client on key 1, one slow build with waiters on key 2.
    GetOutcome cached;
    start_get(1, cached);
    advance(1ms);
    ASSERT_FALSE(cached.ec);
    behaviour_.delay = 10s;
    std::vector<GetOutcome> waiters(5);
    for (auto& o : waiters) {
        start_get(2, o);
    }
    run();
    EXPECT_EQ(counters_.factory_calls.load(), 2);

    bool shut = false;
    pool.async_shutdown([&](error_code ec) {
        EXPECT_FALSE(ec);
        shut = true;
    });
    run();  // no time passes: the cancelled factory returns at once
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

TEST_P(PoolTest, DestroyingThePoolMidFlightIsSafe) {
    behaviour_.delay = 10s;
    make_pool();
    std::vector<GetOutcome> waiters(3);
    for (auto& o : waiters) {
        start_get(1, o);
    }
    run();
    pool_.reset();  // no shutdown
    run();
    for (auto& o : waiters) {
        EXPECT_EQ(o.ec, ResultCode::shutting_down);
    }
}

// An application that stops its io_context and destroys it with builds still pending (the
// factory waiting, the pool destroyed, its stop posted but never run): destroying the queued work
// destroys the flights while they are listed for their connect deadline. That must not touch a
// freed list nor assert (it did: a flight's deadline hook was still linked in its destructor).
TEST_P(PoolTest, DestroyingTheIoContextWithBuildsPendingIsSafe) {
    auto other = std::make_unique<asio::io_context>();
    PoolOptions options;
    options.build_on_strand = GetParam();
    auto pool = std::make_unique<KeyedClientPool<int, FakeClient>>(
        other->get_executor(), make_factory<asio::steady_timer>(counters_, behaviour_), options);
    behaviour_.delay = 1h;
    int completed = 0;
    for (int key = 0; key < 3; ++key) {
        pool->async_get(key, [&](error_code, ClientPtr) { ++completed; });
    }
    other->poll();  // the builds start and wait in the factory
    EXPECT_EQ(counters_.factory_calls.load(), 3);
    pool.reset();  // no shutdown: its stops are posted and never run
    other.reset();
    EXPECT_EQ(counters_.constructed.load(), 0);
    EXPECT_EQ(completed, 0) << "a handler ran while its io_context was destroyed";
}

// A get created by the default token is a lazily started coroutine: it may start after the pool
// is gone. It must be refused, not touch a destroyed engine (ASan: heap-use-after-free in probe).
TEST_P(PoolTest, AGetStartedAfterThePoolIsDestroyedIsRefused) {
    make_pool();
    asio::io_context other;
    error_code got;
    asio::co_spawn(other, pool_->async_get(7), [&](std::exception_ptr e, ClientPtr) {
        got = e ? detail::error_code_of(e, ResultCode::cancelled) : error_code{};
    });
    pool_.reset();
    run();
    other.run();
    EXPECT_EQ(got, ResultCode::shutting_down);
}

TEST_P(PoolTest, ShutdownWaitsForARudeFactoryAndClosesItsClient) {
    behaviour_.delay = 50ms;
    behaviour_.ignore_cancellation = true;
    auto& pool = make_pool();
    GetOutcome waiter;
    start_get(1, waiter);
    run();
    bool shut = false;
    pool.async_shutdown([&](error_code ec) {
        EXPECT_FALSE(ec);
        shut = true;
        // By the time shutdown completes, the late client has been closed.
        EXPECT_EQ(counters_.constructed.load(), 1);
        EXPECT_EQ(counters_.closed.load(), 1);
    });
    run();
    EXPECT_EQ(waiter.ec, ResultCode::shutting_down);
    EXPECT_FALSE(shut) << "shutdown completed before the factory returned";
    advance(50ms);
    EXPECT_TRUE(shut);
}

// Shutdown's wait for a factory that ignores cancellation is bounded by shutdown_timeout; it says
// so (timeout, builds_in_progress) and the late client is still closed when it arrives.
TEST_P(PoolTest, ShutdownStopsWaitingForARudeFactoryAtShutdownTimeout) {
    behaviour_.delay = 10s;
    behaviour_.ignore_cancellation = true;
    PoolOptions options;
    options.connect_timeout = 0s;  // no connect bound: only shutdown_timeout ends the wait
    options.shutdown_timeout = 1s;
    auto& pool = make_pool(options);
    GetOutcome waiter;
    start_get(1, waiter);
    run();
    error_code shut_ec;
    bool shut = false;
    pool.async_shutdown([&](error_code ec) {
        shut = true;
        shut_ec = ec;
    });
    advance(999ms);
    EXPECT_FALSE(shut);
    advance(1ms);
    ASSERT_TRUE(shut);
    EXPECT_EQ(shut_ec, ResultCode::timeout);
    EXPECT_EQ(pool.stats().builds_in_progress, 1u);
    advance(9s);
    EXPECT_EQ(counters_.closed.load(), 1);
    EXPECT_EQ(pool.stats().builds_in_progress, 0u);
}

TEST_P(PoolTest, ConcurrentShutdownsAllComplete) {
    behaviour_.delay = 10ms;
    behaviour_.ignore_cancellation = true;
    auto& pool = make_pool();
    GetOutcome waiter;
    start_get(1, waiter);
    run();
    int completed = 0;
    for (int i = 0; i < 3; ++i) {
        pool.async_shutdown([&](error_code ec) {
            EXPECT_FALSE(ec);
            ++completed;
        });
    }
    run();
    EXPECT_EQ(completed, 0);
    advance(10ms);
    EXPECT_EQ(completed, 3);
}

// ---- limits -----------------------------------------------------------------------------------

TEST_P(PoolTest, MaxClientsFailsWithPoolExhaustedAfterWaitTimeout) {
    PoolOptions options;
    options.max_clients = 2;
    options.wait_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome a, b, c;
    start_get(1, a);
    start_get(2, b);
    advance(1ms);
    ASSERT_FALSE(a.ec);
    ASSERT_FALSE(b.ec);
    start_get(3, c);
    advance(19ms);
    EXPECT_FALSE(c.done);
    advance(1ms);
    EXPECT_EQ(c.ec, ResultCode::pool_exhausted);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
    EXPECT_EQ(pool.stats().live_clients, 2u);
    EXPECT_EQ(pool.stats().build_failures, 0u) << "no factory call failed";
    // Cached keys are still served at the cap.
    EXPECT_NE(pool.try_get(1), nullptr);
}

TEST_P(PoolTest, MaxClientsWaiterGetsThePermitFreedByIdleEviction) {
    PoolOptions options;
    options.max_clients = 1;
    options.wait_timeout = 5s;
    options.idle_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    advance(1ms);
    ASSERT_FALSE(a.ec);
    a.client.reset();  // nobody holds key 1's client any more: it can go idle
    start_get(2, b);
    run();
    EXPECT_FALSE(b.done);
    advance(30ms);  // the sweep at 1 + 10 + 10 + 10 ms finds key 1 idle for >= 20 ms
    advance(1ms);   // key 2's factory
    EXPECT_TRUE(b.done);
    EXPECT_FALSE(b.ec) << b.ec.message();
    EXPECT_EQ(pool.stats().evictions, 1u);
    EXPECT_EQ(pool.stats().live_clients, 1u);
    EXPECT_EQ(pool.size(), 1u);
}

TEST_P(PoolTest, InvalidateFreesAPermitForAWaiter) {
    PoolOptions options;
    options.max_clients = 1;
    options.wait_timeout = 5s;
    auto& pool = make_pool(options);
    GetOutcome a, b;
    start_get(1, a);
    advance(1ms);
    start_get(2, b);
    run();
    EXPECT_FALSE(b.done);
    EXPECT_TRUE(pool.invalidate(1));
    advance(1ms);
    EXPECT_FALSE(b.ec);
    EXPECT_TRUE(a.client->closed());
}

// The last waiter of a build queued for a permit leaves in the same turn as a permit frees: the
// build must not go on (no factory call, nothing cached), and the permit must be free again.
TEST_P(PoolTest, ABuildAbandonedWhileWaitingForAPermitNeverBuilds) {
    PoolOptions options;
    options.max_clients = 1;
    options.wait_timeout = 5s;
    options.idle_timeout = 0s;
    auto& pool = make_pool(options);
    GetOutcome a, b, c;
    start_get(1, a);
    advance(1ms);
    ASSERT_FALSE(a.ec);
    asio::cancellation_signal cancel;
    start_get(2, b, cancel.slot());
    run();  // key 2's build is queued for the permit
    cancel.emit(asio::cancellation_type::terminal);
    EXPECT_TRUE(pool.invalidate(1));  // the permit frees in the same turn
    run();
    EXPECT_EQ(b.ec, asio::error::operation_aborted);
    EXPECT_EQ(counters_.factory_calls.load(), 1) << "the abandoned build called the factory";
    EXPECT_EQ(pool.size(), 0u) << "a client nobody asked for was cached";
    // The permit is free: another key builds at once, without waiting.
    start_get(3, c);
    advance(1ms);
    EXPECT_FALSE(c.ec) << c.ec.message();
}

TEST_P(PoolTest, IdleClientsAreEvictedAndTheSweeperStops) {
    PoolOptions options;
    options.idle_timeout = 20ms;
    auto& pool = make_pool(options);
    GetOutcome held, dropped;
    start_get(1, held);
    start_get(2, dropped);
    advance(1ms);
    ASSERT_TRUE(held.done && dropped.done);
    dropped.client.reset();
    // Not held elsewhere and unused: evicted. Still held by the test: kept.
    advance(19ms);
    EXPECT_EQ(pool.stats().evictions, 0u) << "evicted before idle_timeout";
    advance(10ms);
    EXPECT_EQ(pool.stats().evictions, 1u);
    EXPECT_EQ(pool.size(), 1u);
    EXPECT_NE(pool.try_get(1), nullptr);
    EXPECT_FALSE(held.client->closed());
    held.client.reset();
    advance(30ms);
    EXPECT_EQ(pool.size(), 0u);
    EXPECT_EQ(pool.stats().evictions, 2u);
    EXPECT_EQ(VirtualTime::pending(), 0u) << "the sweeper kept running with nothing cached";
}

// ---- API surface ------------------------------------------------------------------------------

TEST_P(PoolTest, CallbacksAreNeverCompletedInline) {
    auto& pool = make_pool();
    GetOutcome miss;
    start_get(1, miss);
    EXPECT_FALSE(miss.done);
    advance(1ms);
    ASSERT_FALSE(miss.ec);
    GetOutcome hit;
    start_get(1, hit);
    EXPECT_FALSE(hit.done) << "a hit completed inside async_get";
    run();
    EXPECT_TRUE(hit.done);
    EXPECT_EQ(hit.client, miss.client);
    EXPECT_GE(pool.stats().hits, 1u);
}

// On a hit, `co_await async_get(k)` and `co_await async_get(k, as_tuple(use_awaitable))` behave
// the same: both return without suspending (a handler posted before them has not run after).
TEST_P(PoolTest, AwaitableAndTupleAwaitableHitsDoNotSuspend) {
    auto& pool = make_pool();
    GetOutcome warm;
    start_get(1, warm);
    advance(1ms);
    bool plain_suspended = true, tuple_suspended = true;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
            bool posted_ran = false;
            asio::post(io_, [&] { posted_ran = true; });
            auto client = co_await pool.async_get(1);
            plain_suspended = posted_ran;
            EXPECT_EQ(client, warm.client);
            posted_ran = false;
            asio::post(io_, [&] { posted_ran = true; });
            auto [ec, same] = co_await pool.async_get(1, asio::as_tuple(asio::use_awaitable));
            tuple_suspended = posted_ran;
            EXPECT_FALSE(ec);
            EXPECT_EQ(same, warm.client);
        },
        asio::detached);
    run();
    EXPECT_FALSE(plain_suspended);
    EXPECT_FALSE(tuple_suspended);
}

TEST_P(PoolTest, WorksWithEveryCompletionToken) {
    auto& pool = make_pool();
    // use_future (its handler runs on the system executor's thread, which fulfils the future)
    auto future = pool.async_get(1, asio::use_future);
    advance(1ms);
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
    advance(1ms);
    EXPECT_EQ(tuple_ec, ResultCode::auth_failed);
    EXPECT_EQ(thrown, ResultCode::backoff);
}

TEST_P(PoolTest, TryGetNeverBuilds) {
    auto& pool = make_pool();
    EXPECT_EQ(pool.try_get(1), nullptr);
    EXPECT_EQ(counters_.factory_calls.load(), 0);
    GetOutcome o;
    start_get(1, o);
    advance(1ms);
    EXPECT_EQ(pool.try_get(1), o.client);
}

TEST_P(PoolTest, InvalidateClosesAndTheNextGetRebuilds) {
    auto& pool = make_pool();
    GetOutcome first, second;
    start_get(1, first);
    advance(1ms);
    EXPECT_TRUE(pool.invalidate(1));
    EXPECT_TRUE(first.client->closed());
    EXPECT_FALSE(pool.invalidate(1));
    start_get(1, second);
    advance(1ms);
    EXPECT_NE(second.client, first.client);
    EXPECT_EQ(counters_.factory_calls.load(), 2);
}

TEST_P(PoolTest, InvalidateClearsBackoff) {
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    auto& pool = make_pool();
    GetOutcome failed, rebuilt;
    start_get(1, failed);
    advance(1ms);
    EXPECT_EQ(failed.ec, ResultCode::forbidden);
    EXPECT_TRUE(pool.invalidate(1));
    behaviour_.outcome = FactoryBehaviour::Outcome::client;
    start_get(1, rebuilt);
    advance(1ms);
    EXPECT_FALSE(rebuilt.ec);
}

TEST_P(PoolTest, CloseThatThrowsStillCountsAsClosedOnce) {
    struct Throwing {
        static bool is_healthy(const FakeClient&) { return true; }
        static void close(FakeClient& c) {
            c.close();
            throw std::runtime_error("close failed");
        }
    };
    KeyedClientPool<int, FakeClient, Throwing, std::hash<int>, std::equal_to<int>,
                    VirtualTimeTraits>
        pool(io_.get_executor(), make_factory<VirtualTimer>(counters_, behaviour_), [] {
            PoolOptions o;
            o.build_on_strand = GetParam();
            return o;
        }());
    pool.async_get(1, [](error_code, ClientPtr) {});
    advance(1ms);
    pool.async_shutdown([](error_code) {});
    run();
    EXPECT_EQ(pool.stats().closes, 1u);
}

// A logger set in the options receives the pool's messages; the global one does not.
TEST_P(PoolTest, APoolLogsToItsOwnLogger) {
    struct Sink : spdlog::sinks::base_sink<std::mutex> {
        std::vector<std::string> lines;
        void sink_it_(const spdlog::details::log_msg& msg) override {
            lines.emplace_back(msg.payload.data(), msg.payload.size());
        }
        void flush_() override {}
    };
    auto sink = std::make_shared<Sink>();
    PoolOptions options;
    options.logger = std::make_shared<spdlog::logger>("pool-under-test", sink);
    behaviour_.outcome = FactoryBehaviour::Outcome::system_error;
    make_pool(options);
    GetOutcome failed;
    start_get(1, failed);
    advance(1ms);
    ASSERT_FALSE(sink->lines.empty());
    EXPECT_NE(sink->lines.back().find("failed"), std::string::npos) << sink->lines.back();
}

INSTANTIATE_TEST_SUITE_P(BuildExecutor, PoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                             return param_info.param ? "Strand" : "PoolExecutor";
                         });

}  // namespace
}  // namespace keyedpool::test
