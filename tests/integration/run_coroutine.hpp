// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_TESTS_RUN_COROUTINE_HPP
#define KEYEDPOOL_TESTS_RUN_COROUTINE_HPP

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <chrono>
#include <exception>

namespace keyedpool::test {

/// Runs `body()` (an awaitable) on `io` until it finishes, rethrowing what it threw. Other work on
/// `io` (servers, background releases) keeps running meanwhile. Fails instead of hanging when
/// nothing happens for `idle_limit`.
template <typename Body>
void run_coroutine(boost::asio::io_context& io, Body body,
                   std::chrono::steady_clock::duration idle_limit = std::chrono::seconds(30)) {
    bool finished = false;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, body(), [&](std::exception_ptr e) {
        finished = true;
        failure = e;
    });
    io.restart();
    while (!finished && io.run_one_for(idle_limit)) {
    }
    ASSERT_TRUE(finished) << "the test coroutine did not finish";
    if (failure) {
        std::rethrow_exception(failure);
    }
}

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_RUN_COROUTINE_HPP
