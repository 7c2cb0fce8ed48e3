// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A held lease (the lease core's LockState, its watchdog and its guard) against a scripted
// backend, on virtual time: every renewal and release takes one "round trip" of 5 ms, and
// answers what the test scripted. Among the cases, the watchdog bugs of Redisson, each as a
// scenario: a release racing the acquisition's own completion never leaves a renewing watchdog
// behind (#7272), and renewal resumes after the connection comes back (#3194).
#include "lease/core/lock_common.hpp"
#include "lease/core/lock_state.hpp"
#include "quiet_logger.hpp"
#include "virtual_io.hpp"

#include <keyedpool/lock_guard.hpp>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <memory>
#include <optional>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto round_trip = 5ms;

/// Answers renewals from a script (then success), counting every request.
struct ScriptedBackend : detail::LockBackend {
    asio::awaitable<error_code> renew(detail::LockState&) override {
        ++renewals;
        co_await trip();
        if (renew_answers.empty()) {
            co_return error_code{};
        }
        const error_code answer = renew_answers.front();
        renew_answers.pop_front();
        co_return answer;
    }
    asio::awaitable<error_code> release(detail::LockState&) override {
        ++releases;
        co_await trip();
        co_return error_code{};
    }
    static asio::awaitable<void> trip() {
        VirtualTimer timer(co_await asio::this_coro::executor, round_trip);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    std::deque<error_code> renew_answers;
    int renewals = 0;
    int releases = 0;
};

class HeldLease : public ::testing::Test {
  protected:
    /// A lock just granted with `lease` and a watchdog, as a backend's grant builds it.
    LockGuard grant(std::chrono::milliseconds lease) {
        return detail::make_held_lease(io_.get_executor(), backend_, "r", "token", 7, lease,
                                       /*auto_renew=*/true, nullptr, time_->now(), time_, nullptr);
    }

    void TearDown() override { EXPECT_TRUE(io_.drain(1h)) << "a timer outlived the lease"; }

    QuietLogger quiet_;
    VirtualIo io_;
    std::shared_ptr<const TimeSource> time_ = TimeSource::from_traits<VirtualTimeTraits>();
    std::shared_ptr<ScriptedBackend> backend_ = std::make_shared<ScriptedBackend>();
};

TEST_F(HeldLease, TheWatchdogRenewsEveryThirdOfTheLeaseAndKeepsTheLock) {
    auto guard = grant(300ms);
    io_.run();
    io_.advance(1s);
    EXPECT_TRUE(guard.owns_lock());
    EXPECT_FALSE(guard.lost());
    // Renewals at 100, 205, 310, … (each after the previous one's round trip): 9 within 1 s.
    EXPECT_EQ(backend_->renewals, 9);
    std::optional<error_code> released;
    guard.async_release([&](error_code ec) { released = ec; });
    io_.advance(round_trip);
    ASSERT_TRUE(released.has_value());
    EXPECT_FALSE(*released);
}

// Redisson #7272: the holder releases in the very handler that delivered the lock, before the
// lease's own start-up (lease timer, watchdog) has run on its strand.
TEST_F(HeldLease, AReleaseAsTheGrantCompletesLeavesNoRenewingWatchdog) {
    auto guard = grant(30ms);
    std::optional<error_code> released;
    guard.async_release([&](error_code ec) { released = ec; });
    io_.run();
    io_.advance(round_trip);
    ASSERT_TRUE(released.has_value());
    EXPECT_FALSE(*released);
    io_.advance(10s);  // a leaked watchdog would renew 300 times by now
    EXPECT_EQ(backend_->renewals, 0);
    EXPECT_EQ(backend_->releases, 1);
}

// The same race one step later: a renewal is on the wire when the holder releases; its success
// must not restart the lease timer or the watchdog.
TEST_F(HeldLease, ARenewalInFlightWhenTheHolderReleasesIsTheLastOne) {
    auto guard = grant(30ms);
    io_.run();
    io_.advance(10ms);  // the first renewal is sent now, answered at 15 ms
    ASSERT_EQ(backend_->renewals, 1);
    io_.advance(2ms);
    std::optional<error_code> released;
    guard.async_release([&](error_code ec) { released = ec; });
    io_.advance(round_trip);
    ASSERT_TRUE(released.has_value());
    EXPECT_FALSE(*released);
    io_.advance(10s);
    EXPECT_EQ(backend_->renewals, 1);
    EXPECT_EQ(backend_->releases, 1);
}

// Redisson #3194: renewal stopped for good after a reconnect. A transient failure (a reset
// connection) must leave the watchdog renewing, and the next success extends the lease.
TEST_F(HeldLease, RenewalResumesAfterTheConnectionComesBack) {
    backend_->renew_answers = {ResultCode::io_error};
    auto guard = grant(300ms);
    io_.run();
    io_.advance(105ms);  // the first renewal failed
    ASSERT_EQ(backend_->renewals, 1);
    EXPECT_TRUE(guard.owns_lock());
    io_.advance(105ms);  // the second one, at 205 ms, succeeded: valid from then on
    ASSERT_EQ(backend_->renewals, 2);
    io_.advance(1s);
    EXPECT_TRUE(guard.owns_lock());
    EXPECT_FALSE(guard.lost());
    EXPECT_EQ(backend_->renewals, 11);  // and it kept renewing
    guard.async_release([](error_code) {});
    io_.advance(round_trip);
}

TEST_F(HeldLease, FailuresPastTheValidityLoseTheLockAndStopTheWatchdog) {
    backend_->renew_answers = {ResultCode::io_error, ResultCode::io_error, ResultCode::io_error};
    auto guard = grant(300ms);
    io_.run();
    io_.advance(294ms);
    EXPECT_TRUE(guard.owns_lock());
    io_.advance(1ms);  // validity: 300 ms - (1% + 2 ms) = 295 ms after the grant was sent
    EXPECT_TRUE(guard.lost());
    const int renewals = backend_->renewals;
    EXPECT_EQ(renewals, 2);
    io_.advance(10s);
    EXPECT_EQ(backend_->renewals, renewals);
}

TEST_F(HeldLease, ARefusedRenewalLosesTheLockAtOnce) {
    backend_->renew_answers = {ResultCode::not_lock_owner};
    auto guard = grant(300ms);
    io_.run();
    io_.advance(104ms);
    EXPECT_TRUE(guard.owns_lock());
    io_.advance(1ms);
    EXPECT_TRUE(guard.lost());
    io_.advance(10s);
    EXPECT_EQ(backend_->renewals, 1);
}

}  // namespace
}  // namespace keyedpool::test
