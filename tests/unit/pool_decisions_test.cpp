// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The pool's decisions on their own: no io_context, no clock, no locks (as Boost.Redis tests its
// state machines).
#include <keyedpool/detail/backoff.hpp>
#include <keyedpool/detail/pool/decisions.hpp>
#include <keyedpool/result_code.hpp>

#include <gtest/gtest.h>
#include <boost/asio/error.hpp>

#include <chrono>

namespace keyedpool::test {
namespace {

using namespace detail::pool;
using Action = FlightLifecycle::Action;
using Stage = FlightLifecycle::Stage;
using namespace std::chrono_literals;

KeyFacts cached(bool healthy) {
    KeyFacts f;
    f.has_client = true;
    f.client_healthy = healthy;
    return f;
}

KeyFacts failed(std::uint64_t seq, bool in_backoff, bool flight_open = false) {
    KeyFacts f;
    f.has_failure = true;
    f.failure_seq = seq;
    f.in_backoff = in_backoff;
    f.flight_open = flight_open;
    return f;
}

// ---- the first look ---------------------------------------------------------------------------

TEST(DecideProbe, AHealthyClientIsAHitAnUnhealthyOneAMiss) {
    EXPECT_EQ(decide_probe(cached(true)), ProbeAction::hit);
    EXPECT_EQ(decide_probe(cached(false)), ProbeAction::miss);
}

TEST(DecideProbe, AFailureInBackoffFailsFastAfterItsDeadlineItIsAMiss) {
    EXPECT_EQ(decide_probe(failed(1, true)), ProbeAction::backoff);
    EXPECT_EQ(decide_probe(failed(1, false)), ProbeAction::miss);
    EXPECT_EQ(decide_probe(KeyFacts{}), ProbeAction::miss);
}

// ---- a miss under the lock --------------------------------------------------------------------

TEST(DecideMiss, NothingThereStartsABuildAnOpenFlightIsJoined) {
    EXPECT_EQ(decide_miss(KeyFacts{}, 0), MissAction::start);
    KeyFacts building;
    building.flight_open = true;
    EXPECT_EQ(decide_miss(building, 0), MissAction::join);
}

TEST(DecideMiss, AClientStoredMeanwhileIsAHitABrokenOneIsReplaced) {
    EXPECT_EQ(decide_miss(cached(true), 0), MissAction::hit);
    EXPECT_EQ(decide_miss(cached(false), 0), MissAction::replace);
}

// One result per build: a failure recorded after the get first looked is that get's result, even
// with no backoff and even if a new flight has opened since.
TEST(DecideMiss, AFailureNewerThanTheFirstLookIsTheGetsResult) {
    EXPECT_EQ(decide_miss(failed(5, false), 4), MissAction::same_error);
    EXPECT_EQ(decide_miss(failed(5, true, true), 4), MissAction::same_error);
}

TEST(DecideMiss, AnOlderFailureJoinsABuildOrBacksOffOrRebuilds) {
    EXPECT_EQ(decide_miss(failed(5, true, true), 5), MissAction::join);
    EXPECT_EQ(decide_miss(failed(5, true), 5), MissAction::backoff);
    EXPECT_EQ(decide_miss(failed(5, false), 9), MissAction::start);
}

// ---- a build's outcome --------------------------------------------------------------------------

TEST(ClassifyFactoryReturn, AThrownCodeIsKeptOtherwiseNullAndUnhealthyAreErrors) {
    FactoryReturn r;
    r.thrown = ResultCode::forbidden;
    r.made_client = true;
    r.healthy = true;
    EXPECT_EQ(classify_factory_return(r), ResultCode::forbidden);
    EXPECT_EQ(classify_factory_return(FactoryReturn{}), ResultCode::connect_failed);
    EXPECT_EQ(classify_factory_return(FactoryReturn{true, false, {}}), ResultCode::unhealthy);
    EXPECT_FALSE(classify_factory_return(FactoryReturn{true, true, {}}));
}

TEST(StartsBackoff, EveryFailureButAFullPool) {
    EXPECT_TRUE(starts_backoff(ResultCode::timeout));
    EXPECT_TRUE(starts_backoff(ResultCode::connect_failed));
    EXPECT_FALSE(starts_backoff(ResultCode::pool_exhausted));
}

// ---- a flight's life ----------------------------------------------------------------------------

TEST(FlightLifecycle, WithoutPermitsTheFactoryIsCalledAndItsReturnFinishes) {
    FlightLifecycle life;
    life.join();
    EXPECT_EQ(life.on_start(false, true), Action::call_factory);
    EXPECT_EQ(life.stage(), Stage::calling_factory);
    EXPECT_EQ(life.on_factory_returned(true), Action::finish);
    EXPECT_TRUE(life.end(FlightEnd::built));
    EXPECT_FALSE(life.open());
    EXPECT_EQ(life.stage(), Stage::done);
}

TEST(FlightLifecycle, OnlyTheFirstEndCounts) {
    FlightLifecycle life;
    life.join();
    EXPECT_TRUE(life.end(FlightEnd::timed_out));
    EXPECT_FALSE(life.end(FlightEnd::built));
    EXPECT_FALSE(life.end(FlightEnd::shut_down));
    EXPECT_EQ(life.end_reason(), FlightEnd::timed_out);
}

TEST(FlightLifecycle, TheLastWaiterLeavingAbandonsTheFlightAndStopsTheFactory) {
    FlightLifecycle life;
    life.join();
    life.join();
    life.on_start(false, true);
    EXPECT_FALSE(life.leave());
    EXPECT_TRUE(life.open());
    EXPECT_TRUE(life.leave());
    EXPECT_EQ(life.end_reason(), FlightEnd::abandoned);
    EXPECT_EQ(life.on_ended(), Action::cancel_factory);
    // The factory's late return is discarded (its client closed), never cached.
    EXPECT_EQ(life.on_factory_returned(false), Action::discard);
}

TEST(FlightLifecycle, AFlightEndedBeforeItsFirstStepNeverBuilds) {
    FlightLifecycle life;
    life.join();
    EXPECT_TRUE(life.leave());
    EXPECT_EQ(life.on_ended(), Action::none);  // the stop arrived before the start
    EXPECT_EQ(life.on_start(true, false), Action::none);
    EXPECT_EQ(life.stage(), Stage::done);
}

TEST(FlightLifecycle, AConnectTimeoutFinishesOnlyWhileTheFactoryRuns) {
    FlightLifecycle life;
    life.join();
    EXPECT_EQ(life.on_start(true, true), Action::wait_for_permit);
    EXPECT_EQ(life.on_connect_timeout(), Action::none);  // a stale timer while queued
    EXPECT_EQ(life.on_permit_granted(true), Action::call_factory);
    EXPECT_EQ(life.on_connect_timeout(), Action::finish);
}

// The race of bug 3: the last waiter leaves while the build is queued for a permit, and a permit
// frees in the same turn. The build must give the permit back instead of calling the factory.
TEST(FlightLifecycle, APermitGrantedToAnAbandonedFlightIsReleased) {
    FlightLifecycle life;
    life.join();
    EXPECT_EQ(life.on_start(true, true), Action::wait_for_permit);
    EXPECT_TRUE(life.leave());
    EXPECT_EQ(life.on_ended(), Action::leave_queue);
    // Leaving failed: the permit had been handed over already; its grant arrives.
    EXPECT_EQ(life.on_permit_granted(false), Action::release_permit);
    EXPECT_EQ(life.stage(), Stage::done);
}

TEST(FlightLifecycle, APermitWaitExpiresOnlyIfTheBuildLeftTheQueue) {
    FlightLifecycle queued;
    queued.on_start(true, true);
    EXPECT_EQ(queued.on_permit_wait_expired(true), Action::finish);
    FlightLifecycle handed_over;
    handed_over.on_start(true, true);
    EXPECT_EQ(handed_over.on_permit_wait_expired(false), Action::none);
    EXPECT_EQ(handed_over.on_permit_granted(true), Action::call_factory);
}

// ---- backoff ------------------------------------------------------------------------------------

TEST(BackoffDelay, GrowsGeometricallyUpToTheMax) {
    BackoffOptions o;
    o.initial = 100ms;
    o.multiplier = 2;
    o.max = 350ms;
    o.jitter = 0;
    EXPECT_EQ(detail::backoff_delay(o, 1, 0.5), 100ms);
    EXPECT_EQ(detail::backoff_delay(o, 2, 0.5), 200ms);
    EXPECT_EQ(detail::backoff_delay(o, 3, 0.5), 350ms);
    EXPECT_EQ(detail::backoff_delay(o, 30, 0.5), 350ms);
}

TEST(BackoffDelay, JitterSpreadsAroundTheNominalDelayAndNeverPassesTheMax) {
    BackoffOptions o;
    o.initial = 100ms;
    o.max = 110ms;
    o.jitter = 0.2;
    EXPECT_EQ(detail::backoff_delay(o, 1, 0.0), 80ms);
    EXPECT_EQ(detail::backoff_delay(o, 1, 0.5), 100ms);
    EXPECT_EQ(detail::backoff_delay(o, 1, 0.999999), 110ms) << "clamped to max";
    o.initial = 0ms;
    EXPECT_EQ(detail::backoff_delay(o, 1, 0.9), 0ms) << "no backoff stays none";
}

}  // namespace
}  // namespace keyedpool::test
