// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// A connection's command queue on its own: what is written, what a cancellation or a caller's
// deadline does before and after writing, and that replies keep matching their commands.
#include "redis/command_queue.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

using boost::system::error_code;
using redis::Reply;
using redis::detail::CommandQueue;
using redis::detail::ExecHandler;
using Answered = CommandQueue::Answered;
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Records which commands completed, by name.
struct Completions {
    std::vector<std::string> names;
    ExecHandler handler(std::string name) {
        return ExecHandler([this, name](error_code, Reply) { names.push_back(name); });
    }
};

CommandQueue::Command command(std::uint64_t id, ExecHandler handler, std::string payload,
                              clock::time_point caller_deadline = clock::time_point::max()) {
    return {id, std::move(handler), std::move(payload), clock::time_point::max(), caller_deadline};
}

void call(ExecHandler handler) {
    ASSERT_TRUE(handler);
    std::move(handler)(error_code{}, Reply{});
}

TEST(CommandQueue, WrittenCommandsAreAnsweredInOrder) {
    Completions done;
    CommandQueue queue;
    queue.push(command(1, done.handler("a"), "A"));
    queue.push(command(2, done.handler("b"), "B"));
    std::string wire;
    queue.take_unwritten(wire);
    EXPECT_EQ(wire, "AB");
    EXPECT_FALSE(queue.has_unwritten());
    ExecHandler first;
    ASSERT_EQ(queue.pop_answered(first), Answered::command);
    call(std::move(first));
    ExecHandler second;
    ASSERT_EQ(queue.pop_answered(second), Answered::command);
    call(std::move(second));
    EXPECT_EQ(done.names, (std::vector<std::string>{"a", "b"}));
    ExecHandler none;
    EXPECT_EQ(queue.pop_answered(none), Answered::nothing) << "a reply nobody asked for";
}

TEST(CommandQueue, ACommandCancelledBeforeItIsWrittenIsNeverWritten) {
    Completions done;
    CommandQueue queue;
    queue.push(command(1, done.handler("a"), "A"));
    std::string wire;
    queue.take_unwritten(wire);
    queue.push(command(2, done.handler("b"), "B"));
    queue.push(command(3, done.handler("c"), "C"));
    call(queue.cancel(2, asio::cancellation_type::total));
    EXPECT_EQ(done.names, (std::vector<std::string>{"b"}));
    wire.clear();
    queue.take_unwritten(wire);
    EXPECT_EQ(wire, "C") << "the cancelled command was written";
    EXPECT_EQ(queue.size(), 2u);
}

TEST(CommandQueue, ACommandCancelledAfterItIsWrittenKeepsItsPlaceForItsReply) {
    Completions done;
    CommandQueue queue;
    queue.push(command(1, done.handler("a"), "A"));
    queue.push(command(2, done.handler("b"), "B"));
    std::string wire;
    queue.take_unwritten(wire);
    EXPECT_FALSE(queue.cancel(1, asio::cancellation_type::total)) << "total cannot undo a write";
    call(queue.cancel(1, asio::cancellation_type::terminal));
    EXPECT_FALSE(queue.cancel(1, asio::cancellation_type::terminal)) << "completed once only";
    ExecHandler first;
    ASSERT_EQ(queue.pop_answered(first), Answered::command);
    EXPECT_FALSE(first) << "the first reply belongs to the cancelled command: dropped";
    ExecHandler second;
    ASSERT_EQ(queue.pop_answered(second), Answered::command);
    call(std::move(second));
    EXPECT_EQ(done.names, (std::vector<std::string>{"a", "b"}));
}

// ASKING + a command redirected by ASK: one entry, written together, whose first reply (ASKING's)
// is dropped; cancelled before it is written, neither goes out (a lone ASKING would let the
// connection's next command, someone else's, be served by an importing node).
TEST(CommandQueue, LeadingRepliesAreDroppedAndTheirCommandsGoOrStayWithTheCommand) {
    Completions done;
    CommandQueue queue;
    queue.push(
        {1, done.handler("a"), "ASKING+A", clock::time_point::max(), clock::time_point::max(), 1});
    queue.push(
        {2, done.handler("b"), "ASKING+B", clock::time_point::max(), clock::time_point::max(), 1});
    call(queue.cancel(2, asio::cancellation_type::total));
    std::string wire;
    queue.take_unwritten(wire);
    EXPECT_EQ(wire, "ASKING+A") << "the cancelled pair was written, or half of it";
    ExecHandler handler;
    EXPECT_EQ(queue.pop_answered(handler), Answered::leading);
    EXPECT_FALSE(handler) << "ASKING's reply reached the caller";
    EXPECT_EQ(queue.written_count(), 1u) << "the command left before its own reply";
    ASSERT_EQ(queue.pop_answered(handler), Answered::command);
    call(std::move(handler));
    EXPECT_EQ(done.names, (std::vector<std::string>{"b", "a"}));
    EXPECT_TRUE(queue.empty());
}

TEST(CommandQueue, CallersDeadlinesExpireLikeCancellations) {
    Completions done;
    CommandQueue queue;
    const auto now = clock::now();
    queue.push(command(1, done.handler("written-late"), "A", now - 1ms));
    queue.push(command(2, done.handler("written-in-time"), "B", now + 1h));
    std::string wire;
    queue.take_unwritten(wire);
    queue.push(command(3, done.handler("queued-late"), "C", now - 1ms));
    queue.push(command(4, done.handler("no-deadline"), "D"));
    EXPECT_LE(queue.next_caller_deadline(), now - 1ms);
    for (auto& handler : queue.expire(now)) {
        call(std::move(handler));
    }
    EXPECT_EQ(done.names, (std::vector<std::string>{"written-late", "queued-late"}));
    EXPECT_EQ(queue.next_caller_deadline(), now + 1h) << "exact again after expire";
    wire.clear();
    queue.take_unwritten(wire);
    EXPECT_EQ(wire, "D") << "the expired unwritten command was written";
    EXPECT_EQ(queue.size(), 3u) << "the expired written command keeps its place";
}

TEST(CommandQueue, TakeAllReturnsOnlyTheHandlersStillWaiting) {
    Completions done;
    CommandQueue queue;
    queue.push(command(1, done.handler("a"), "A"));
    queue.push(command(2, done.handler("b"), "B"));
    std::string wire;
    queue.take_unwritten(wire);
    call(queue.cancel(1, asio::cancellation_type::terminal));
    auto rest = queue.take_all();
    ASSERT_EQ(rest.size(), 1u);
    call(std::move(rest.front()));
    EXPECT_EQ(done.names, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(queue.empty());
}

}  // namespace
}  // namespace keyedpool::test
