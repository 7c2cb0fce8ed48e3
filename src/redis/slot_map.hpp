// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A Redis Cluster's slot map: which primary (and replicas) serve each hash slot.
#ifndef KEYEDPOOL_SRC_REDIS_SLOT_MAP_HPP
#define KEYEDPOOL_SRC_REDIS_SLOT_MAP_HPP

#include <keyedpool/redis/cluster.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/reply.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace keyedpool::redis::detail {

/// One snapshot of the map, as a node described it (`CLUSTER SLOTS`).
struct SlotMap {
    /// The primaries, each once, in the order the reply first named them.
    std::vector<Endpoint> primaries;
    /// `replicas[i]`: the replicas of `primaries[i]`.
    std::vector<std::vector<Endpoint>> replicas;
    /// `owner[slot]`: index into `primaries`, or -1 when no node serves the slot.
    std::array<std::int16_t, cluster_slot_count> owner;

    SlotMap() { owner.fill(-1); }

    /// The primary serving `slot`, or null.
    const Endpoint* primary_of(std::uint16_t slot) const noexcept {
        const auto i = owner[slot];
        return i < 0 ? nullptr : &primaries[static_cast<std::size_t>(i)];
    }
    /// Whether every slot has a primary.
    bool complete() const noexcept;
};

/// Parses a `CLUSTER SLOTS` reply from `asked` (a node whose address is empty or "?" in the reply
/// is `asked`'s host). `ResultCode::protocol_error` for anything malformed: not an array, a range
/// outside 0..16383 or reversed, a node entry without host and port, more than 32767 primaries.
boost::system::error_code parse_cluster_slots(const Reply& reply, const Endpoint& asked,
                                              SlotMap& map);

/// A `-MOVED slot host:port` or `-ASK slot host:port` error's slot and node (the host may be an
/// IPv6 address: the port follows the last ':'; an empty host is `asked`'s). None when `text`
/// (the error's text) is neither, or is malformed.
struct Redirect {
    std::uint16_t slot = 0;
    Endpoint node;
};
std::optional<Redirect> parse_redirect(std::string_view text, const Endpoint& asked);

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_SLOT_MAP_HPP
