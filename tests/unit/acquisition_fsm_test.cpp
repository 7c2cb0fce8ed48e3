// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The acquisition's decisions, walked path by path without an io_context: time is a number the
// test passes in. Among them, the field bugs of the lock libraries we compare with, each as a
// scenario the machine must survive.
#include "lease/core/acquisition_fsm.hpp"

#include <keyedpool/result_code.hpp>

#include <gtest/gtest.h>
#include <boost/asio/error.hpp>

#include <random>

namespace keyedpool::lease {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
using Type = AcquisitionAction::Type;

const clock::time_point t0 = clock::time_point(1000s);

AcquisitionParams waiting(clock::duration wait, clock::duration lease = 30s) {
    AcquisitionParams p;
    p.wait = wait;
    p.lease = lease;
    p.request_timeout = 2s;
    p.recheck_interval = 1s;
    return p;
}

AcquisitionParams trying(clock::duration lease = 30s) {
    AcquisitionParams p = waiting(0s, lease);
    p.try_only = true;
    return p;
}

AttemptResult taken(std::uint64_t fence) {
    AttemptResult r;
    r.acquired = true;
    r.fence = fence;
    return r;
}

AttemptResult busy(std::optional<clock::duration> retry_after = std::nullopt) {
    AttemptResult r;
    r.retry_after = retry_after;
    return r;
}

AttemptResult failed(error_code ec) {
    AttemptResult r;
    r.ec = ec;
    return r;
}

// ---- without contention ----------------------------------------------------------------------

TEST(AcquisitionFsm, AFreeLeaseIsTakenInOneAttempt) {
    AcquisitionFsm fsm(waiting(5s), t0);
    auto a = fsm.start(t0);
    ASSERT_EQ(a.type, Type::attempt);
    EXPECT_TRUE(a.queue);         // a waiting request keeps a queue place if it is taken
    EXPECT_EQ(a.until, t0 + 5s);  // bounded by the wait
    a = fsm.attempted(taken(7), t0 + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
    EXPECT_EQ(a.fence, 7u);
    EXPECT_EQ(a.held_from, t0);  // the lease runs from when the request was sent
    EXPECT_FALSE(a.give_back);
    EXPECT_EQ(fsm.attempts(), 1);
}

TEST(AcquisitionFsm, ATryIsBoundedByTheRequestTimeoutAndNeverQueues) {
    AcquisitionFsm fsm(trying(), t0);
    auto a = fsm.start(t0);
    ASSERT_EQ(a.type, Type::attempt);
    EXPECT_FALSE(a.queue);
    EXPECT_EQ(a.until, t0 + 2s);
    a = fsm.attempted(busy(20s), t0 + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::lock_busy);
    EXPECT_FALSE(a.give_back);  // not queued: nothing on the server to give back
}

TEST(AcquisitionFsm, ALockWithoutWaitTimesOutAtOnceAndSaysTheLockWasHeld) {
    AcquisitionFsm fsm(waiting(0s), t0);
    auto a = fsm.start(t0);
    EXPECT_FALSE(a.queue);
    EXPECT_EQ(a.until, t0 + 2s);
    a = fsm.attempted(busy(), t0 + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_EQ(a.cause, ResultCode::lock_busy);
    EXPECT_FALSE(a.give_back);
}

TEST(AcquisitionFsm, ARequestThatRunsOutOfTimeIsTheServerBeingTooSlowForATry) {
    AcquisitionFsm fsm(trying(), t0);
    fsm.start(t0);
    auto a = fsm.attempted(failed(ResultCode::timeout), t0 + 2s);
    EXPECT_EQ(a.ec, ResultCode::timeout);
    EXPECT_TRUE(a.give_back);  // it may have been taken after all
}

TEST(AcquisitionFsm, ARequestThatRunsOutOfTheWaitIsALockTimeoutCausedByTheServer) {
    AcquisitionFsm fsm(waiting(500ms), t0);
    fsm.start(t0);
    auto a = fsm.attempted(failed(ResultCode::timeout), t0 + 500ms);
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_EQ(a.cause, ResultCode::timeout);
    EXPECT_TRUE(a.give_back);
}

// ---- waiting ---------------------------------------------------------------------------------

TEST(AcquisitionFsm, AQueuedWaiterIsGrantedByTheHandOverNamingIt) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(busy(20s), t0 + 1ms);
    ASSERT_EQ(a.type, Type::wait);
    EXPECT_TRUE(a.for_hand_over);
    EXPECT_EQ(a.until, t0 + 1ms + 1s);  // the re-check, sooner than the holder's lease
    a = fsm.handed_over(42, t0 + 300ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
    EXPECT_EQ(a.fence, 42u);
    EXPECT_EQ(a.held_from, t0);  // after the last attempt reached the server
    EXPECT_EQ(fsm.attempts(), 1);
}

TEST(AcquisitionFsm, AHandOverAfterReTriesRunsFromTheLastAttempt) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    fsm.attempted(busy(), t0 + 1ms);
    auto a = fsm.woken(t0 + 1s);
    ASSERT_EQ(a.type, Type::attempt);
    fsm.attempted(busy(), t0 + 1s + 1ms);
    a = fsm.handed_over(5, t0 + 1500ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.held_from, t0 + 1s);
}

// Redisson #3730: a lease that runs out with nobody releasing is taken over within one re-check:
// the waiter tries when the holder's lease would end.
TEST(AcquisitionFsm, ALeaseRunningOutWithNobodyReleasingIsTakenWhenItEnds) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(busy(300ms), t0 + 1ms);
    ASSERT_EQ(a.type, Type::wait);
    EXPECT_EQ(a.until, t0 + 301ms);
    a = fsm.woken(a.until);
    ASSERT_EQ(a.type, Type::attempt);
    a = fsm.attempted(taken(3), t0 + 302ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
    EXPECT_EQ(a.held_from, t0 + 301ms);
}

// Redisson #3829: the holder's key is lost in a failover; no release ever publishes a hand-over.
// The waiter still finds the lock free at its next re-check, not at the end of the old holder's
// (long) lease.
TEST(AcquisitionFsm, AHolderLostInAFailoverStillLetsTheQueueOnWithinOneReCheck) {
    AcquisitionFsm fsm(waiting(60s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(busy(30s), t0 + 1ms);
    ASSERT_EQ(a.type, Type::wait);
    EXPECT_LE(a.until - t0, 1s + 1ms);
    const auto retried_at = a.until;
    a = fsm.woken(retried_at);  // the failover happened meanwhile: the key is gone
    ASSERT_EQ(a.type, Type::attempt);
    a = fsm.attempted(taken(1ull << 33), retried_at + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
}

// Redisson #3004 (and our own finding, a server clock running fast): a live waiter keeps its queue
// place by trying; whatever the server says about the holder's lease and whatever fails on the
// way, a waiter never goes longer than a re-check interval without trying again.
TEST(AcquisitionFsm, ALiveWaiterNeverGoesLongerThanAReCheckWithoutTrying) {
    std::mt19937 random(20261207);
    const error_code transient[] = {ResultCode::io_error, ResultCode::connect_failed,
                                    ResultCode::unhealthy, ResultCode::backoff,
                                    ResultCode::server_busy};
    for (int run = 0; run < 200; ++run) {
        AcquisitionFsm fsm(waiting(30s), t0);
        auto now = t0;
        auto a = fsm.start(now);
        auto sent = now;
        while (a.type != Type::done) {
            if (a.type == Type::attempt) {
                sent = now;
                now += std::chrono::milliseconds(random() % 5);
                const auto pick = random() % 4;
                if (pick == 0) {
                    a = fsm.attempted(failed(transient[random() % 5]), now);
                } else {
                    a = fsm.attempted(busy(std::chrono::milliseconds(random() % 60000)), now);
                }
            } else {
                ASSERT_EQ(a.type, Type::wait);
                ASSERT_LE(a.until, fsm.deadline());
                ASSERT_LE(a.until - sent, 1s + 5ms) << "run " << run;
                now = a.until;
                a = fsm.woken(now);
            }
        }
        EXPECT_EQ(a.ec, ResultCode::lock_timeout);
        EXPECT_TRUE(a.give_back);
    }
}

TEST(AcquisitionFsm, AWaitEndsAtItsDeadlineAndGivesTheQueuePlaceBack) {
    AcquisitionFsm fsm(waiting(1500ms), t0);
    fsm.start(t0);
    auto a = fsm.attempted(busy(), t0 + 1ms);
    fsm.woken(a.until);
    a = fsm.attempted(busy(), a.until + 1ms);
    ASSERT_EQ(a.type, Type::wait);
    EXPECT_EQ(a.until, t0 + 1500ms);  // never past the deadline
    a = fsm.woken(a.until);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_EQ(a.cause, ResultCode::lock_busy);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, AnAttemptAnsweredAfterTheDeadlineEndsTheWait) {
    AcquisitionFsm fsm(waiting(1s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(busy(), t0 + 1s);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_TRUE(a.give_back);
}

// ---- grants that come late -------------------------------------------------------------------

TEST(AcquisitionFsm, AGrantWithLessThanHalfItsLeaseLeftIsTakenAgainWithinTheWait) {
    AcquisitionFsm fsm(waiting(10s, 1s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(taken(1), t0 + 600ms);  // 1 s lease, 600 ms late: under half left
    ASSERT_EQ(a.type, Type::attempt);
    EXPECT_EQ(a.late_by, 600ms);
    a = fsm.attempted(taken(2), t0 + 601ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
    EXPECT_EQ(a.fence, 2u);
    EXPECT_EQ(a.held_from, t0 + 600ms);
    EXPECT_EQ(fsm.attempts(), 2);
}

TEST(AcquisitionFsm, ALateGrantOfATryIsGivenBack) {
    AcquisitionFsm fsm(trying(1s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(taken(1), t0 + 700ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::timeout);
    EXPECT_TRUE(a.give_back);
    EXPECT_EQ(a.late_by, 700ms);
}

TEST(AcquisitionFsm, ALateHandOverAtTheEndOfTheWaitIsGivenBack) {
    AcquisitionFsm fsm(waiting(2s, 1s), t0);
    fsm.start(t0);
    fsm.attempted(busy(), t0 + 1ms);
    auto a = fsm.handed_over(9, t0 + 2s);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, AGrantExactlyHalfValidIsUsed) {
    // valid_until = sent + lease - (lease/100 + 2 ms); granted when at least lease/2 is left.
    const auto lease = 1000ms;
    const auto slack = lease / 2 - (lease / 100 + 2ms);  // 488 ms after sending
    AcquisitionFsm fsm(trying(lease), t0);
    fsm.start(t0);
    EXPECT_EQ(fsm.attempted(taken(1), t0 + slack).ec, error_code{});
    AcquisitionFsm late(trying(lease), t0);
    late.start(t0);
    EXPECT_EQ(late.attempted(taken(1), t0 + slack + 1ns).ec, ResultCode::timeout);
}

// ---- failures --------------------------------------------------------------------------------

TEST(AcquisitionFsm, TransientFailuresAreRetriedInsideTheWaitWithADoublingPause) {
    AcquisitionFsm fsm(waiting(10s), t0);
    auto now = t0;
    auto a = fsm.start(now);
    std::vector<clock::duration> pauses;
    for (int i = 0; i < 8; ++i) {
        a = fsm.attempted(failed(ResultCode::connect_failed), now);
        ASSERT_EQ(a.type, Type::wait);
        EXPECT_FALSE(a.for_hand_over);
        pauses.push_back(a.until - now);
        now = a.until;
        a = fsm.woken(now);
        ASSERT_EQ(a.type, Type::attempt);
    }
    const std::vector<clock::duration> expected{5ms, 10ms, 20ms, 40ms, 80ms, 160ms, 250ms, 250ms};
    EXPECT_EQ(pauses, expected);
    a = fsm.attempted(taken(4), now + 1ms);  // the server came back
    ASSERT_EQ(a.type, Type::done);
    EXPECT_FALSE(a.ec);
}

TEST(AcquisitionFsm, AWaitSpentOnFailuresEndsAtItsDeadlineWithLockTimeoutCarryingTheLastOne) {
    AcquisitionFsm fsm(waiting(100ms), t0);
    auto now = t0;
    auto a = fsm.start(now);
    int failures = 0;
    while (a.type == Type::attempt) {
        ++failures;
        a = fsm.attempted(failed(failures % 2 ? error_code(ResultCode::io_error)
                                              : error_code(boost::asio::error::connection_reset)),
                          now);
        ASSERT_EQ(a.type, Type::wait);
        ASSERT_LE(a.until, t0 + 100ms);
        now = a.until;
        a = fsm.woken(now);
    }
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(now, t0 + 100ms);  // the wait is spent to its end, not given up early
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    // 5 + 10 + 20 + 40 = 75 ms of pauses, then the last pause ends at the deadline.
    EXPECT_EQ(failures, 5);
    EXPECT_EQ(a.cause, ResultCode::io_error);  // the last failure
    EXPECT_TRUE(a.give_back);
    EXPECT_EQ(fsm.attempts(), 5);
}

// The service's connection pool answers `backoff` after a failed connect until its backoff ends:
// the cause reported is the failure behind it.
TEST(AcquisitionFsm, BackoffAfterAFailedConnectReportsTheFailedConnect) {
    AcquisitionFsm fsm(waiting(50ms), t0);
    auto now = t0;
    auto a = fsm.start(now);
    a = fsm.attempted(failed(ResultCode::connect_failed), now);
    while (a.type == Type::wait) {
        now = a.until;
        a = fsm.woken(now);
        if (a.type == Type::attempt) {
            a = fsm.attempted(failed(ResultCode::backoff), now);
        }
    }
    EXPECT_EQ(a.ec, ResultCode::lock_timeout);
    EXPECT_EQ(a.cause, ResultCode::connect_failed);

    AcquisitionFsm only_backoff(waiting(50ms), t0);  // the pool was in backoff already
    a = only_backoff.start(t0);
    a = only_backoff.attempted(failed(ResultCode::backoff), t0);
    now = a.until;
    while (a.type != Type::done) {
        a = only_backoff.woken(now = a.until);
        if (a.type == Type::attempt) {
            a = only_backoff.attempted(failed(ResultCode::backoff), now);
        }
    }
    EXPECT_EQ(a.cause, ResultCode::backoff);
}

TEST(AcquisitionFsm, ABusyReplyAfterFailuresRestartsThePauses) {
    AcquisitionFsm fsm(waiting(10s), t0);
    auto now = t0;
    fsm.start(now);
    auto a = fsm.attempted(failed(ResultCode::io_error), now);
    now = a.until;
    fsm.woken(now);
    a = fsm.attempted(failed(ResultCode::io_error), now);
    EXPECT_EQ(a.until - now, 10ms);
    now = a.until;
    fsm.woken(now);
    a = fsm.attempted(busy(), now);  // reached the server: queued
    ASSERT_EQ(a.type, Type::wait);
    EXPECT_TRUE(a.for_hand_over);
    now = a.until;
    fsm.woken(now);
    a = fsm.attempted(failed(ResultCode::io_error), now);
    EXPECT_EQ(a.until - now, 5ms);
}

TEST(AcquisitionFsm, ATryReportsATransientFailureAsItIs) {
    AcquisitionFsm fsm(trying(), t0);
    fsm.start(t0);
    auto a = fsm.attempted(failed(ResultCode::connect_failed), t0);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, ResultCode::connect_failed);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, APermanentFailureEndsTheWaitAtOnce) {
    // not_replicated too: the caller asked to know when a grant is not durable (it was given back).
    for (error_code ec :
         {error_code(ResultCode::auth_failed), error_code(ResultCode::protocol_error),
          error_code(ResultCode::not_replicated), error_code(ResultCode::server_error)}) {
        AcquisitionFsm fsm(waiting(10s), t0);
        fsm.start(t0);
        auto a = fsm.attempted(failed(ec), t0 + 1ms);
        ASSERT_EQ(a.type, Type::done) << ec.message();
        EXPECT_EQ(a.ec, ec);
        EXPECT_TRUE(a.give_back);
    }
}

// ---- cancellation ----------------------------------------------------------------------------

TEST(AcquisitionFsm, CancellingWhileARequestIsOutGivesBackWhatItMayHaveTaken) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    auto a = fsm.cancelled(t0 + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, boost::asio::error::operation_aborted);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, CancellingAQueuedWaiterGivesItsPlaceBack) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    fsm.attempted(busy(), t0 + 1ms);
    auto a = fsm.cancelled(t0 + 5ms);
    EXPECT_EQ(a.ec, boost::asio::error::operation_aborted);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, ACancellationThatReachedTheRequestEndsTheAcquisition) {
    AcquisitionFsm fsm(waiting(10s), t0);
    fsm.start(t0);
    auto a = fsm.attempted(failed(boost::asio::error::operation_aborted), t0 + 1ms);
    ASSERT_EQ(a.type, Type::done);
    EXPECT_EQ(a.ec, boost::asio::error::operation_aborted);
    EXPECT_TRUE(a.give_back);
}

TEST(AcquisitionFsm, TransientPausesNeverExceedTheReCheck) {
    EXPECT_EQ(transient_pause(1, 1s), 5ms);
    EXPECT_EQ(transient_pause(4, 1s), 40ms);
    EXPECT_EQ(transient_pause(100, 1s), 250ms);
    EXPECT_EQ(transient_pause(100, 30ms), 30ms);
    EXPECT_EQ(transient_pause(0, 1s), 5ms);
}

}  // namespace
}  // namespace keyedpool::lease
