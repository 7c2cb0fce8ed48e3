// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_URL_HPP
#define KEYEDPOOL_REDIS_URL_HPP

/// \file
/// `keyedpool::redis::parse_url`: a `ConnectionConfig` from a Redis URL.

#include <keyedpool/redis/connection.hpp>

#include <string_view>

namespace keyedpool::redis {

/// Parses a Redis URL (RFC 3986, with Boost.URL) into a `ConnectionConfig`, starting from
/// `defaults` (timeouts, limits, TLS files): what the URL says replaces the matching fields.
///
/// | form | meaning |
/// |---|---|
/// | `redis://[[user]:password@]host[:port][/db]` | TCP; port 6379, database 0 when absent |
/// | `rediss://...` (same parts) | TLS over TCP (`tls.enabled`; verification as in `defaults.tls`)
/// | | `unix://[[user]:password@]/path/redis.sock[?db=N]` | a unix domain socket |
///
/// The host may be a name, an IPv4 address or a bracketed IPv6 address (`[::1]`). User name and
/// password are percent-decoded (`p%40ss` is `p@ss`); `redis://:secret@host` sets only the
/// password (`AUTH secret`). A user name without a password is refused: Redis has no such login.
///
/// \throws std::invalid_argument naming the part that is wrong (scheme, user, host, port,
/// database, path, query, fragment). The message never contains the URL or the password.
ConnectionConfig parse_url(std::string_view url, ConnectionConfig defaults);

/// `parse_url(url, ConnectionConfig{})`. (An overload, not a default argument: g++ 12 mishandles
/// a defaulted class-type argument inside a `co_await` expression.)
ConnectionConfig parse_url(std::string_view url);

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_URL_HPP
