// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The RESP2 parser fed raw bytes: no socket, no server. Replies split at every byte, pipelined
// replies, every type, malformed input and the size limit.
#include "redis/reply_parser.hpp"

#include <keyedpool/result_code.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

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
    for (const char* bad : {"?what\r\n", ":12x\r\n", "$abc\r\n", "*-2\r\n"}) {
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

TEST(FormatCommand, EncodesArgumentsAsABulkArray) {
    EXPECT_EQ(redis::detail::format_command({"SET", "k", "a\0b"s}),
              "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"s);
}

}  // namespace
}  // namespace keyedpool::test
