// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Parsing CLUSTER SLOTS into a slot map, including hostile replies.
#include "redis/slot_map.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

using redis::Endpoint;
using redis::Reply;
using redis::detail::parse_cluster_slots;
using redis::detail::parse_redirect;
using redis::detail::SlotMap;

Reply node(std::string host, long long port) {
    return Reply::array(
        {Reply::string(std::move(host)), Reply::integer(port), Reply::string("0123456789abcdef")});
}
Reply range(long long first, long long last, std::vector<Reply> nodes) {
    std::vector<Reply> e{Reply::integer(first), Reply::integer(last)};
    for (auto& n : nodes) {
        e.push_back(std::move(n));
    }
    return Reply::array(std::move(e));
}

const Endpoint asked{"10.0.0.9", 7000};

TEST(SlotMap, ParsesRangesPrimariesAndReplicas) {
    const auto reply = Reply::array({
        range(0, 5460, {node("127.0.0.1", 7000), node("127.0.0.1", 7003)}),
        range(5461, 10922, {node("127.0.0.1", 7001), node("127.0.0.1", 7004)}),
        range(10923, 16383, {node("127.0.0.1", 7002)}),
    });
    SlotMap map;
    ASSERT_FALSE(parse_cluster_slots(reply, asked, map));
    EXPECT_TRUE(map.complete());
    ASSERT_EQ(map.primaries.size(), 3u);
    EXPECT_EQ(*map.primary_of(0), (Endpoint{"127.0.0.1", 7000}));
    EXPECT_EQ(*map.primary_of(5460), (Endpoint{"127.0.0.1", 7000}));
    EXPECT_EQ(*map.primary_of(5461), (Endpoint{"127.0.0.1", 7001}));
    EXPECT_EQ(*map.primary_of(16383), (Endpoint{"127.0.0.1", 7002}));
    EXPECT_EQ(map.replicas[0], (std::vector<Endpoint>{{"127.0.0.1", 7003}}));
    EXPECT_TRUE(map.replicas[2].empty());
}

TEST(SlotMap, APrimaryWithSeveralRangesIsListedOnceAndGapsAreIncomplete) {
    const auto reply = Reply::array({
        range(0, 99, {node("a", 1)}), range(200, 299, {node("a", 1)}),
        range(100, 199, {node("", 7000)}),  // "": the node asked
    });
    SlotMap map;
    ASSERT_FALSE(parse_cluster_slots(reply, asked, map));
    EXPECT_EQ(map.primaries.size(), 2u);
    EXPECT_EQ(*map.primary_of(250), (Endpoint{"a", 1}));
    EXPECT_EQ(*map.primary_of(150), (Endpoint{"10.0.0.9", 7000}));
    EXPECT_EQ(map.primary_of(300), nullptr);
    EXPECT_FALSE(map.complete());
}

TEST(SlotMap, HostileRepliesAreProtocolErrors) {
    const std::vector<Reply> bad{
        Reply::string("not an array"),
        Reply::array({Reply::integer(1)}),
        Reply::array({range(10, 5, {node("a", 1)})}),                       // reversed
        Reply::array({range(0, 16384, {node("a", 1)})}),                    // past the last slot
        Reply::array({range(-1, 3, {node("a", 1)})}),                       // negative
        Reply::array({range(0, 3, {Reply::array({Reply::string("a")})})}),  // no port
        Reply::array({range(0, 3, {node("a", 70000)})}),                    // port out of range
        Reply::array({range(0, 3, {Reply::integer(5)})}),                   // node not an array
        Reply::array({range(0, 3, {node("a", 1), node("b", 0)})}),          // bad replica
    };
    for (std::size_t i = 0; i < bad.size(); ++i) {
        SlotMap map;
        EXPECT_EQ(parse_cluster_slots(bad[i], asked, map), ResultCode::protocol_error) << i;
    }
}

TEST(SlotMap, RedirectsNameTheirSlotAndNode) {
    auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381", asked);
    ASSERT_TRUE(moved);
    EXPECT_EQ(moved->slot, 3999);
    EXPECT_EQ(moved->node, (Endpoint{"127.0.0.1", 6381}));
    auto ask = parse_redirect("ASK 0 ::1:7002", asked);
    ASSERT_TRUE(ask);
    EXPECT_EQ(ask->slot, 0);
    EXPECT_EQ(ask->node, (Endpoint{"::1", 7002})) << "IPv6: the port follows the last ':'";
    auto bracketed = parse_redirect("MOVED 16383 [::1]:7002", asked);
    ASSERT_TRUE(bracketed);
    EXPECT_EQ(bracketed->node, (Endpoint{"::1", 7002}));
    auto no_host = parse_redirect("MOVED 12 :7005", asked);
    ASSERT_TRUE(no_host);
    EXPECT_EQ(no_host->node, (Endpoint{"10.0.0.9", 7005})) << "an empty host is the node asked";
}

TEST(SlotMap, MalformedRedirectsAreNotFollowed) {
    for (const char* text :
         {"MOVED", "MOVED 3999", "MOVED 3999 host", "MOVED 16384 h:1", "MOVED -1 h:1",
          "MOVED x h:1", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h:1x", "ASK 1 h:", "ERR 1 h:1",
          "moved 1 h:1", "MOVED 1:2 h"}) {
        EXPECT_FALSE(parse_redirect(text, asked)) << text;
    }
}

}  // namespace
}  // namespace keyedpool::test
