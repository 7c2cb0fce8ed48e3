// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "fake_client.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace keyedpool::test {
namespace {

// Constructing a pool with `options` throws std::invalid_argument whose message names `field`.
void expect_rejected(const PoolOptions& options, const std::string& field) {
    asio::io_context io;
    Counters counters;
    FactoryBehaviour behaviour;
    try {
        Pool pool(io.get_executor(), make_factory(counters, behaviour), options);
        FAIL() << "options with a bad " << field << " were accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(field), std::string::npos)
            << "message does not name " << field << ": " << e.what();
    }
}

TEST(PoolOptions, DefaultsAreValid) {
    EXPECT_NO_THROW(validate(PoolOptions{}));
}

TEST(PoolOptions, NegativeDurationsAreRejected) {
    PoolOptions o;
    o.connect_timeout = -1ms;
    expect_rejected(o, "connect_timeout");
    o = {};
    o.wait_timeout = -1ms;
    expect_rejected(o, "wait_timeout");
    o = {};
    o.idle_timeout = -1ns;
    expect_rejected(o, "idle_timeout");
    o = {};
    o.backoff.initial = -5ms;
    expect_rejected(o, "backoff.initial");
}

TEST(PoolOptions, BackoffShapeIsChecked) {
    PoolOptions o;
    o.backoff.initial = 2s;
    o.backoff.max = 1s;
    expect_rejected(o, "backoff.max");
    o = {};
    o.backoff.multiplier = 0.5;
    expect_rejected(o, "backoff.multiplier");
    o.backoff.multiplier = std::numeric_limits<double>::quiet_NaN();
    expect_rejected(o, "backoff.multiplier");
    o = {};
    o.backoff.jitter = 1.5;
    expect_rejected(o, "backoff.jitter");
    o.backoff.jitter = -0.1;
    expect_rejected(o, "backoff.jitter");
}

TEST(PoolOptions, EmptyFactoryIsRejected) {
    asio::io_context io;
    EXPECT_THROW(Pool(io.get_executor(), Pool::factory_type{}), std::invalid_argument);
}

TEST(PoolOptions, ZeroMeansDisabledNotInvalid) {
    PoolOptions o;
    o.connect_timeout = 0s;
    o.wait_timeout = 0s;
    o.idle_timeout = 0s;
    o.backoff.initial = 0s;
    o.backoff.max = 0s;
    o.backoff.jitter = 0;
    EXPECT_NO_THROW(validate(o));
}

}  // namespace
}  // namespace keyedpool::test
