// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_CLUSTER_HPP
#define KEYEDPOOL_REDIS_CLUSTER_HPP

/// \file
/// Redis Cluster: key hash slots.

#include <cstdint>
#include <string_view>

namespace keyedpool::redis {

/// How many hash slots a Redis Cluster divides its keys into.
inline constexpr std::uint16_t cluster_slot_count = 16384;

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of the key modulo 16384 — or, when the key
/// has a hash tag (the text between its first '{' and the next '}', if not empty), of the tag
/// alone, so `{user:42}:profile` and `{user:42}:orders` share a slot. The same function as the
/// server's `CLUSTER KEYSLOT`.
std::uint16_t hash_slot(std::string_view key) noexcept;

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_CLUSTER_HPP
