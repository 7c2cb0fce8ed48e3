// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// Which arguments of a command are keys, and the one slot they must share on a cluster.
#include "redis/command_keys.hpp"

#include <keyedpool/redis/cluster.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

using redis::detail::command_keys;
using redis::detail::command_slot;
using Keys = std::vector<std::string_view>;

Keys keys_of(const std::vector<std::string>& command) {
    auto [ec, keys] = command_keys(command);
    EXPECT_FALSE(ec) << command[0];
    return keys;
}

TEST(CommandKeys, EachRuleFindsItsKeys) {
    EXPECT_EQ(keys_of({"GET", "a"}), (Keys{"a"}));
    EXPECT_EQ(keys_of({"set", "a", "1", "PX", "10"}), (Keys{"a"})) << "names are case-insensitive";
    EXPECT_EQ(keys_of({"PING"}), Keys{});
    EXPECT_EQ(keys_of({"CLUSTER", "SLOTS"}), Keys{});
    EXPECT_EQ(keys_of({"PUBLISH", "channel", "m"}), Keys{});
    EXPECT_EQ(keys_of({"DEL", "a", "b", "c"}), (Keys{"a", "b", "c"}));
    EXPECT_EQ(keys_of({"MSET", "a", "1", "b", "2"}), (Keys{"a", "b"}));
    EXPECT_EQ(keys_of({"RENAME", "a", "b"}), (Keys{"a", "b"}));
    EXPECT_EQ(keys_of({"BLPOP", "a", "b", "5"}), (Keys{"a", "b"}));
    EXPECT_EQ(keys_of({"EVALSHA", "sha", "2", "k1", "k2", "arg"}), (Keys{"k1", "k2"}));
    EXPECT_EQ(keys_of({"EVAL", "return 1", "0"}), Keys{});
    EXPECT_EQ(keys_of({"SPUBLISH", "ch", "m"}), (Keys{"ch"})) << "sharded channels hash as keys";
}

TEST(CommandKeys, AMalformedKeyCountIsInvalidArgument) {
    for (const std::vector<std::string>& bad : {std::vector<std::string>{"EVAL", "s"},
                                                {"EVAL", "s", "x", "k"},
                                                {"EVAL", "s", "3", "k"},
                                                {"EVALSHA", "s", "-1"},
                                                {}}) {
        EXPECT_EQ(command_keys(bad).ec, ResultCode::invalid_argument)
            << (bad.empty() ? "(empty)" : bad[0]);
    }
}

TEST(CommandSlot, KeysMustShareOneSlot) {
    auto same = command_slot({"MGET", "{u:1}:a", "{u:1}:b"});
    EXPECT_FALSE(same.ec);
    ASSERT_TRUE(same.slot);
    EXPECT_EQ(*same.slot, redis::hash_slot("u:1"));
    // "a" and "b" hash to different slots: refused before anything is sent (CROSSSLOT).
    ASSERT_NE(redis::hash_slot("a"), redis::hash_slot("b"));
    EXPECT_EQ(command_slot({"MGET", "a", "b"}).ec, ResultCode::invalid_argument);
    auto keyless = command_slot({"PING"});
    EXPECT_FALSE(keyless.ec);
    EXPECT_FALSE(keyless.slot);
    const std::vector<std::string> lock_acquire{"EVALSHA",         "sha",  "2", "p:{order}",
                                                "p:{order}:fence", "token"};
    EXPECT_EQ(command_slot(lock_acquire).slot, redis::hash_slot("order"));
}

}  // namespace
}  // namespace keyedpool::test
