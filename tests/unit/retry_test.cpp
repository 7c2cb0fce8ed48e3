// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// retry() on virtual time: the pauses between attempts are driven, never waited for.
#include "virtual_io.hpp"

#include <keyedpool/retry.hpp>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

RetryPolicy no_jitter(unsigned attempts) {
    RetryPolicy policy;
    policy.max_attempts = attempts;
    policy.backoff.initial = 20ms;
    policy.backoff.multiplier = 2;
    policy.backoff.jitter = 0;
    return policy;
}

/// Runs `retry` with an op that returns `results[i]` on call i (the last one after that) and
/// records when each call came.
struct Scripted {
    explicit Scripted(std::vector<error_code> r) : results(std::move(r)) {}
    std::vector<error_code> results;
    std::vector<VirtualClock::time_point> calls;
    asio::awaitable<error_code> operator()() {
        calls.push_back(VirtualClock::now());
        co_return results[std::min(calls.size(), results.size()) - 1];
    }
};

TEST(Retry, RetriesTransientErrorsWithGrowingPausesUntilSuccess) {
    VirtualIo io;
    Scripted op({ResultCode::write_conflict, ResultCode::server_busy, {}});
    error_code result = ResultCode::cancelled;
    const auto start = VirtualClock::now();
    asio::co_spawn(io.context(), retry<VirtualTimeTraits>(no_jitter(5), std::ref(op)),
                   [&](std::exception_ptr, error_code ec) { result = ec; });
    io.run();
    ASSERT_EQ(op.calls.size(), 1u);
    io.advance(19ms);
    EXPECT_EQ(op.calls.size(), 1u) << "retried before the first pause ended";
    io.advance(1ms);
    ASSERT_EQ(op.calls.size(), 2u);
    EXPECT_EQ(op.calls[1] - start, 20ms);
    io.advance(40ms);  // the second pause doubles
    ASSERT_EQ(op.calls.size(), 3u);
    EXPECT_EQ(op.calls[2] - op.calls[1], 40ms);
    EXPECT_FALSE(result);
}

TEST(Retry, StopsAtTheLastAttemptAndReturnsTheLastError) {
    VirtualIo io;
    Scripted op({ResultCode::server_busy});
    error_code result;
    asio::co_spawn(io.context(), retry<VirtualTimeTraits>(no_jitter(4), std::ref(op)),
                   [&](std::exception_ptr, error_code ec) { result = ec; });
    EXPECT_TRUE(io.drain(1h));
    EXPECT_EQ(op.calls.size(), 4u);
    EXPECT_EQ(result, ResultCode::server_busy);
}

TEST(Retry, ANonTransientErrorOrThrownCodeEndsAtOnce) {
    VirtualIo io;
    int calls = 0;
    error_code result;
    asio::co_spawn(io.context(),
                   retry<VirtualTimeTraits>(no_jitter(5),
                                            [&]() -> asio::awaitable<error_code> {
                                                ++calls;
                                                throw boost::system::system_error(
                                                    ResultCode::forbidden);  // not transient
                                                co_return error_code{};
                                            }),
                   [&](std::exception_ptr, error_code ec) { result = ec; });
    io.run();
    EXPECT_EQ(result, ResultCode::forbidden);
    EXPECT_EQ(calls, 1);
}

TEST(Retry, NoAttemptStartsPastTheDeadline) {
    VirtualIo io;
    RetryPolicy policy = no_jitter(1000);
    policy.deadline = 70ms;  // attempts at 0, 20, 60; the next would start at 140
    Scripted op({ResultCode::timeout});
    error_code result;
    asio::co_spawn(io.context(), retry<VirtualTimeTraits>(policy, std::ref(op)),
                   [&](std::exception_ptr, error_code ec) { result = ec; });
    EXPECT_TRUE(io.drain(1h));
    EXPECT_EQ(op.calls.size(), 3u);
    EXPECT_EQ(result, ResultCode::timeout);
}

TEST(Retry, CancellingTheCallerStopsThePause) {
    VirtualIo io;
    Scripted op({ResultCode::timeout});
    asio::cancellation_signal cancel;
    error_code result;
    asio::co_spawn(io.context(), retry<VirtualTimeTraits>(no_jitter(1000), std::ref(op)),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr, error_code ec) { result = ec; }));
    io.advance(30ms);  // attempts at 0 and 20 ms; pausing until 60 ms
    cancel.emit(asio::cancellation_type::terminal);
    io.run();
    EXPECT_EQ(result, asio::error::operation_aborted);
    EXPECT_EQ(op.calls.size(), 2u);
}

TEST(Retry, JitterComesFromTheTimeTraits) {
    VirtualIo io;
    RetryPolicy policy = no_jitter(2);
    policy.backoff.jitter = 0.5;
    FixedJitter::sample() = 0.0;  // factor 0.5: a 10 ms pause
    Scripted op({ResultCode::timeout, {}});
    asio::co_spawn(io.context(), retry<VirtualTimeTraits>(policy, std::ref(op)), asio::detached);
    io.advance(10ms);
    FixedJitter::sample() = 0.5;
    EXPECT_EQ(op.calls.size(), 2u);
}

TEST(Retry, AnInvalidPolicyNamesRetryPolicyFields) {
    RetryPolicy zero_attempts;
    zero_attempts.max_attempts = 0;
    EXPECT_THROW(validate(zero_attempts), std::invalid_argument);
    RetryPolicy bad_backoff;
    bad_backoff.backoff.multiplier = 0.5;
    try {
        validate(bad_backoff);
        FAIL() << "accepted multiplier 0.5";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("RetryPolicy.backoff.multiplier"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace keyedpool::test
