// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The test fixtures themselves: a redis-server a test started must not outlive the test process,
// however that process ends (a crash or a kill would otherwise leave it running and ctest waiting
// for its output pipe).
#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::test {
namespace {

/// Whether `pid` is still a live process (not gone, not a zombie waiting to be reaped by init).
bool alive(pid_t pid) {
    if (::kill(pid, 0) != 0) {
        return false;
    }
    char state = '?';
    if (FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r")) {
        int ignored_pid = 0;
        char name[256];
        if (std::fscanf(f, "%d %255s %c", &ignored_pid, name, &state) != 3) {
            state = '?';
        }
        std::fclose(f);
    }
    return state != 'Z';
}

// A child process starts a server, reports its pid, and dies by SIGKILL (no destructor runs).
// The server must go with it. The wait below is for the kernel to deliver a death signal that
// has already been sent; it is bounded, and the assertion is on the outcome, not on the time.
TEST(RedisServerFixture, TheServerDiesWithTheTestProcessEvenWhenItIsKilled) {
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t test_process = ::fork();
    ASSERT_GE(test_process, 0);
    if (test_process == 0) {
        ::close(report[0]);
        try {
            RedisServer server;
            const pid_t pid = server.pid();
            (void)!::write(report[1], &pid, sizeof pid);
            ::raise(SIGKILL);
        } catch (...) {
        }
        ::_exit(1);
    }
    ::close(report[1]);
    pid_t server = -1;
    const auto n = ::read(report[0], &server, sizeof server);
    ::close(report[0]);
    ::waitpid(test_process, nullptr, 0);
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof server)) << "the child could not start a server";
    for (int i = 0; i < 1000 && alive(server); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(alive(server)) << "redis-server " << server << " outlived its test process";
    if (alive(server)) {
        ::kill(server, SIGKILL);
    }
}

// A server that cannot start is reported at once, not after the 10 s start-up bound.
TEST(RedisServerFixture, AServerThatCannotStartIsAClearError) {
    try {
        RedisServer server({"--this-option-does-not-exist", "x"});
        FAIL() << "a server with a bad option started";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("redis-server"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace keyedpool::test
