// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// redis::hash_slot: CRC16/XMODEM modulo 16384 with hash tags, as the server computes it (checked
// against a real cluster's CLUSTER KEYSLOT in tests/integration/cluster_test.cpp).
#include <keyedpool/redis/cluster.hpp>

#include <gtest/gtest.h>

#include <string>

namespace keyedpool::test {
namespace {

using redis::hash_slot;

TEST(HashSlot, MatchesTheValuesRedisDocuments) {
    EXPECT_EQ(hash_slot("123456789"), 0x31C3);  // the CRC16/XMODEM check value, < 16384
    EXPECT_EQ(hash_slot("somekey"), 11058);
    EXPECT_EQ(hash_slot("foo{hash_tag}"), 2515);
    EXPECT_EQ(hash_slot("bar{hash_tag}"), 2515);
}

TEST(HashSlot, AHashTagIsTheTextBetweenTheFirstBraceAndTheNextClosingOne) {
    EXPECT_EQ(hash_slot("{user1000}.following"), hash_slot("user1000"));
    EXPECT_EQ(hash_slot("{user1000}.followers"), hash_slot("user1000"));
    EXPECT_EQ(hash_slot("foo{bar}{zap}"), hash_slot("bar"));   // the first tag only
    EXPECT_EQ(hash_slot("foo{{bar}}zap"), hash_slot("{bar"));  // from the first '{'
    EXPECT_EQ(hash_slot("keyedpool:lock:{order:1}:fence"), hash_slot("order:1"));
}

TEST(HashSlot, AnEmptyOrUnclosedTagHashesTheWholeKey) {
    EXPECT_NE(hash_slot("foo{}{bar}"), hash_slot("bar")) << "an empty tag does not count";
    EXPECT_EQ(hash_slot("foo{}{bar}"), hash_slot(std::string("foo{}{bar}")));
    EXPECT_NE(hash_slot("foo{bar"), hash_slot("bar"));
    EXPECT_LT(hash_slot(""), redis::cluster_slot_count);
    EXPECT_EQ(hash_slot(""), 0);
}

TEST(HashSlot, BinaryKeysAreHashedByteForByte) {
    const std::string with_nul("a\0b", 3);
    EXPECT_NE(hash_slot(with_nul), hash_slot("a"));
    EXPECT_LT(hash_slot(std::string(1, '\xff')), redis::cluster_slot_count);
}

}  // namespace
}  // namespace keyedpool::test
