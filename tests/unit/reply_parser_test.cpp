// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The RESP2 parser fed raw bytes: no socket, no server. Replies split at every byte, pipelined
// replies, every type, malformed input and the size limit, with the memory a hostile header makes
// the parser allocate measured by counting every allocation of this test program.
#include "redis/reply_parser.hpp"

#include <keyedpool/result_code.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// ---- counting allocator: live and peak bytes of every operator new in this program ------------

namespace {
std::atomic<std::size_t> live_bytes{0};
std::atomic<std::size_t> peak_bytes{0};
constexpr std::size_t header_bytes = alignof(std::max_align_t);

void* counted_allocate(std::size_t size) {
    void* block = std::malloc(size + header_bytes);
    if (block == nullptr) {
        throw std::bad_alloc();
    }
    *static_cast<std::size_t*>(block) = size;
    const std::size_t now = live_bytes.fetch_add(size) + size;
    std::size_t peak = peak_bytes.load();
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
    }
    return static_cast<char*>(block) + header_bytes;
}

void counted_free(void* pointer) noexcept {
    if (pointer != nullptr) {
        void* block = static_cast<char*>(pointer) - header_bytes;
        live_bytes.fetch_sub(*static_cast<std::size_t*>(block));
        std::free(block);
    }
}
}  // namespace

void* operator new(std::size_t size) {
    return counted_allocate(size);
}
void* operator new[](std::size_t size) {
    return counted_allocate(size);
}
void operator delete(void* pointer) noexcept {
    counted_free(pointer);
}
void operator delete[](void* pointer) noexcept {
    counted_free(pointer);
}
void operator delete(void* pointer, std::size_t) noexcept {
    counted_free(pointer);
}
void operator delete[](void* pointer, std::size_t) noexcept {
    counted_free(pointer);
}

namespace keyedpool::test {
namespace {

using boost::system::error_code;
using redis::Reply;
using redis::ReplyType;
using redis::ServerError;
using redis::detail::ReplyParser;
using namespace std::string_literals;  // "..."s keeps embedded NUL bytes

/// Every reply in `bytes`, which must end on a reply boundary.
std::vector<Reply> parse_all(ReplyParser& parser, std::string_view bytes) {
    parser.feed(bytes);
    std::vector<Reply> out;
    error_code ec;
    while (auto reply = parser.next(ec)) {
        out.push_back(std::move(*reply));
    }
    EXPECT_FALSE(ec) << parser.error_text();
    return out;
}

TEST(ReplyParser, ParsesEveryType) {
    ReplyParser parser(1 << 20);
    const auto replies = parse_all(parser,
                                   "+OK\r\n"
                                   ":-42\r\n"
                                   "$5\r\nhe\0lo\r\n"
                                   "$-1\r\n"
                                   "-NOSCRIPT No matching script\r\n"
                                   "*3\r\n:1\r\n*1\r\n+nested\r\n$0\r\n\r\n"
                                   "*-1\r\n"
                                   "*0\r\n"s);
    ASSERT_EQ(replies.size(), 8u);
    EXPECT_EQ(replies[0], Reply::status("OK"));
    EXPECT_EQ(replies[1], Reply::integer(-42));
    EXPECT_EQ(replies[2], Reply::string(std::string("he\0lo", 5))) << "binary-safe bulk";
    EXPECT_TRUE(replies[3].is_nil());
    EXPECT_TRUE(replies[4].is_error());
    EXPECT_EQ(replies[4].server_error(), ServerError::noscript);
    EXPECT_EQ(replies[5], Reply::array({Reply::integer(1), Reply::array({Reply::status("nested")}),
                                        Reply::string("")}));
    EXPECT_TRUE(replies[6].is_nil()) << "a nil array is nil";
    EXPECT_EQ(replies[7], Reply::array({}));
    EXPECT_FALSE(parser.has_partial_reply());
}

// The same bytes cut at every position: the split must never change what comes out.
TEST(ReplyParser, AReplySplitAtAnyByteParsesTheSame) {
    const std::string wire = "*2\r\n$3\r\nfoo\r\n*2\r\n:7\r\n-ERR bad\r\n";
    const Reply expected = Reply::array(
        {Reply::string("foo"), Reply::array({Reply::integer(7), Reply::error("ERR bad")})});
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ReplyParser parser(1 << 20);
        error_code ec;
        parser.feed(std::string_view(wire).substr(0, cut));
        auto early = parser.next(ec);
        ASSERT_FALSE(ec);
        if (cut < wire.size()) {
            EXPECT_FALSE(early.has_value()) << "a reply came out of " << cut << " bytes";
            parser.feed(std::string_view(wire).substr(cut));
            early = parser.next(ec);
        }
        ASSERT_FALSE(ec) << parser.error_text();
        ASSERT_TRUE(early.has_value()) << "cut at " << cut;
        EXPECT_EQ(*early, expected) << "cut at " << cut;
        EXPECT_FALSE(parser.has_partial_reply());
    }
}

TEST(ReplyParser, MalformedInputFailsForGood) {
    for (const char* bad : {"?what\r\n", ":12x\r\n", "$abc\r\n", "*-2\r\n", "$-2\r\n",
                            "$3\r\nabcde\r\n", ":\r\n", "\r\n"}) {
        ReplyParser parser(1 << 20);
        parser.feed(bad);
        error_code ec;
        auto reply = parser.next(ec);
        EXPECT_FALSE(reply.has_value()) << bad;
        EXPECT_EQ(ec, ResultCode::protocol_error) << bad;
        EXPECT_FALSE(parser.error_text().empty());
        // Failed for good: valid bytes afterwards do not revive it.
        parser.feed("+OK\r\n");
        ec = {};
        EXPECT_FALSE(parser.next(ec).has_value());
        EXPECT_EQ(ec, ResultCode::protocol_error);
    }
}

TEST(ReplyParser, AReplyOverTheLimitIsAProtocolError) {
    ReplyParser parser(64);
    parser.feed("$100\r\n" + std::string(100, 'x') + "\r\n");
    error_code ec;
    EXPECT_FALSE(parser.next(ec).has_value());
    EXPECT_EQ(ec, ResultCode::protocol_error);
}

TEST(ReplyParser, AnArrayDeclaringMoreElementsThanCouldFitIsRefusedBeforeAllocating) {
    ReplyParser parser(1024);  // at most 256 four-byte elements could fit
    parser.feed("*1000\r\n");
    error_code ec;
    EXPECT_FALSE(parser.next(ec).has_value());
    EXPECT_EQ(ec, ResultCode::protocol_error);
}

/// The most bytes allocated at once (above what was live before) while `body` runs.
template <typename Body>
std::size_t peak_allocation_of(Body body) {
    const std::size_t before = live_bytes.load();
    peak_bytes.store(before);
    body();
    return peak_bytes.load() - before;
}

constexpr std::size_t default_limit = 64 * 1024 * 1024;  // ConnectionConfig's default

/// Feeds `wire` to a parser limited to `limit` bytes: the error it reports at once, and the peak
/// memory it took meanwhile.
std::pair<error_code, std::size_t> refuse(std::string_view wire, std::size_t limit) {
    error_code ec;
    const std::size_t peak = peak_allocation_of([&] {
        ReplyParser parser(limit);
        parser.feed(wire);
        EXPECT_FALSE(parser.next(ec).has_value());
    });
    return {ec, peak};
}

// 11 bytes declaring 16 million elements made the hiredis-based parser allocate 1.2 GiB before
// checking its 64 MiB budget.
TEST(ReplyParser, AHugeArrayHeaderIsRefusedBeforeAnythingIsAllocated) {
    const auto [ec, peak] = refuse("*16000000\r\n", default_limit);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_LT(peak, 64u * 1024) << "bytes allocated for an 11-byte header";
}

// A declared bulk length was never checked: the parser waited for 1 TB that would never come.
TEST(ReplyParser, AHugeBulkHeaderIsRefusedAtOnceInsteadOfWaitedFor) {
    const auto [ec, peak] = refuse("$999999999999\r\n", default_limit);
    EXPECT_EQ(ec, ResultCode::protocol_error) << "must fail now, not wait for more bytes";
    EXPECT_LT(peak, 64u * 1024);
    // Just past the budget: its bytes on the wire and on the heap would not fit.
    EXPECT_EQ(refuse("$40000000\r\n", default_limit).first, ResultCode::protocol_error);
    // Lengths that do not parse, or overflow.
    EXPECT_EQ(refuse("$99999999999999999999999\r\n", default_limit).first,
              ResultCode::protocol_error);
    EXPECT_EQ(refuse("*99999999999999999999999\r\n", default_limit).first,
              ResultCode::protocol_error);
}

// Arrays inside arrays, each declaring as much as might still fit: the sum is what counts, and
// the peak stays within the limit.
TEST(ReplyParser, NestedArraysShareOneBudget) {
    constexpr std::size_t limit = 1024 * 1024;
    const std::size_t fits = limit / sizeof(Reply) / 2;  // two of these fit, three do not
    std::string wire;
    for (int level = 0; level < 3; ++level) {
        wire += fmt::format("*{}\r\n", fits);
    }
    const auto [ec, peak] = refuse(wire, limit);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_LE(peak, limit + 64 * 1024);
}

TEST(ReplyParser, NestingIsBoundedByMaxDepth) {
    auto nested = [](std::size_t depth) {
        std::string wire;
        for (std::size_t i = 0; i < depth; ++i) {
            wire += "*1\r\n";
        }
        return wire + ":1\r\n";
    };
    ReplyParser parser(1 << 20);
    auto replies = parse_all(parser, nested(ReplyParser::max_depth));
    ASSERT_EQ(replies.size(), 1u) << "nesting at the limit is accepted";
    EXPECT_EQ(refuse(nested(ReplyParser::max_depth + 1), 1 << 20).first,
              ResultCode::protocol_error);
}

// A line that never ends cannot grow the buffer past the limit.
TEST(ReplyParser, ALineWithoutEndIsRefusedAtTheLimit) {
    ReplyParser parser(1024);
    error_code ec;
    parser.feed("+");
    const std::string chunk(100, 'a');
    int fed = 0;
    while (!ec && fed < 100) {
        parser.feed(chunk);
        ++fed;
        EXPECT_FALSE(parser.next(ec).has_value());
    }
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_LE(fed, 11) << "refused once the line passed 1,024 bytes";
}

// The budget is per reply: a long pipeline of replies, together far over the limit, is fine, and
// so is a reply exactly as large as it may be.
TEST(ReplyParser, TheBudgetIsPerReply) {
    ReplyParser parser(64);
    std::string wire;
    for (int i = 0; i < 100; ++i) {
        wire += "$10\r\n0123456789\r\n";  // 17 on the wire + 10 on the heap
    }
    EXPECT_EQ(parse_all(parser, wire).size(), 100u);
    ReplyParser exact(2 * 10 + 5 + 2);  // "$10\r\n" + 10 + CRLF + 10 decoded
    EXPECT_EQ(parse_all(exact, "$10\r\n0123456789\r\n").size(), 1u);
    EXPECT_EQ(refuse("$10\r\n0123456789\r\n", 2 * 10 + 5 + 2 - 1).first,
              ResultCode::protocol_error);
}

TEST(FormatCommand, EncodesArgumentsAsABulkArray) {
    EXPECT_EQ(redis::detail::format_command({"SET", "k", "a\0b"s}),
              "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"s);
}

}  // namespace
}  // namespace keyedpool::test
