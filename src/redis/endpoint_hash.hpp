// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_ENDPOINT_HASH_HPP
#define KEYEDPOOL_SRC_REDIS_ENDPOINT_HASH_HPP

#include <keyedpool/redis/connection.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace keyedpool::redis::detail {

/// A hash of an `Endpoint`, for pools and maps keyed by node.
struct EndpointHash {
    std::size_t operator()(const Endpoint& e) const noexcept {
        return std::hash<std::string>()(e.host) * 31 + e.port;
    }
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_ENDPOINT_HASH_HPP
