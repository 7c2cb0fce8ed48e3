// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Which arguments of a command are keys, and so which cluster slot serves it.
#ifndef KEYEDPOOL_SRC_REDIS_COMMAND_KEYS_HPP
#define KEYEDPOOL_SRC_REDIS_COMMAND_KEYS_HPP

#include <keyedpool/result_code.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyedpool::redis::detail {

/// The arguments of `command` that name keys (or, for sharded pub/sub, channels), by the rules of
/// the command's name (case-insensitive): EVAL/EVALSHA/FCALL (numkeys), MSET (every other), DEL,
/// MGET, EXISTS, ... (all), RENAME, LMOVE, ... (two), BLPOP/BRPOP (all but the timeout), keyless
/// commands (PING, INFO, CLUSTER, SCRIPT, PUBLISH, ...: none), and otherwise the first argument.
/// A malformed count (EVAL's numkeys) yields `invalid_argument`.
struct CommandKeys {
    boost::system::error_code ec;
    std::vector<std::string_view> keys;  // views into `command`
};
CommandKeys command_keys(const std::vector<std::string>& command);

/// The slot every key of `command` hashes to; none for a keyless command; `invalid_argument` when
/// its keys span several slots (Redis Cluster would refuse it with CROSSSLOT).
struct CommandSlot {
    boost::system::error_code ec;
    std::optional<std::uint16_t> slot;
};
CommandSlot command_slot(const std::vector<std::string>& command);

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_COMMAND_KEYS_HPP
