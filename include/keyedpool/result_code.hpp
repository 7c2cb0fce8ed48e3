// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_RESULT_CODE_HPP
#define KEYEDPOOL_RESULT_CODE_HPP

/// \file
/// Typed errors: every failure keyedpool produces or forwards is a `ResultCode` in the
/// `boost::system` error category named "keyedpool". Classify errors with `is_transient()` and by
/// comparing codes (`ec == ResultCode::timeout`), never by searching message text. To format a code
/// with fmt, include `<keyedpool/result_code_format.hpp>`.

#include <boost/system/error_code.hpp>

#include <string_view>
#include <type_traits>

namespace keyedpool {

/// Error codes produced by keyedpool. Values are stable: they are never renumbered or reused.
enum class ResultCode : int {
    /// An operation did not finish within its configured time (connect_timeout, a lock's wait).
    timeout = 1,
    /// The operation was abandoned by the library on the caller's behalf (e.g. a lost lock
    /// cancelled its protected work, or `retry` was cancelled). Per-operation cancellation
    /// requested by the caller reports `boost::asio::error::operation_aborted`, as Asio does.
    cancelled = 2,
    /// The pool or service is shutting down or has shut down; no new work is accepted.
    shutting_down = 3,
    /// The client factory failed to produce a client (it threw, or returned a null client).
    connect_failed = 4,
    /// The factory produced a client that failed its health check at once (treated as a failed
    /// build).
    unhealthy = 5,
    /// `max_clients` clients are alive and no permit was freed within `wait_timeout`.
    pool_exhausted = 6,
    /// A recent build for this key failed; the pool refuses to rebuild until its retry deadline.
    backoff = 7,
    /// An argument or option was invalid.
    invalid_argument = 8,
    /// The server refused the operation for this client (e.g. Aerospike FAIL_FORBIDDEN).
    forbidden = 9,
    /// The server rejected the credentials (e.g. Redis NOAUTH / WRONGPASS).
    auth_failed = 10,
    /// The server is temporarily unable to serve (loading, busy script, TRYAGAIN, overloaded).
    server_busy = 11,
    /// A concurrent writer changed the data first; the operation can be retried.
    write_conflict = 12,
    /// The peer sent something that violates the protocol (garbage, truncated or oversized reply).
    protocol_error = 13,
    /// A network or I/O error occurred while talking to the server.
    io_error = 14,
    /// The lock is held by someone else (returned by try-lock operations, which never wait).
    lock_busy = 15,
    /// The lock could not be acquired within the configured wait.
    lock_timeout = 16,
    /// The lock's lease ended or could not be renewed; another holder may own the resource now.
    lock_lost = 17,
    /// A release or renewal was attempted with a token that does not own the lock.
    not_lock_owner = 18,
    /// The server rejected the command itself (e.g. Redis `-ERR` or `-WRONGTYPE`); its text is in
    /// the reply and the log.
    server_error = 19,
    /// TLS could not be set up: a certificate or key file could not be loaded, or the handshake
    /// failed (the server's certificate is not trusted or does not carry the expected name, or
    /// the server refused ours). The cause is logged.
    tls_failed = 20,
    /// A write was made on the primary but fewer replicas than required acknowledged it in time
    /// (`RedisLockServiceOptions::min_replicas_acked`); a lock taken that way was given back.
    not_replicated = 21,
    /// A Redis Cluster command was redirected (`MOVED`/`ASK`) more often than
    /// `ClusterConfig::max_redirects` allows: the slot is moving, or the nodes disagree about who
    /// serves it. Transient: the cluster settles.
    too_many_redirects = 22,
};

/// The `boost::system` error category of `ResultCode`; its name is "keyedpool".
const boost::system::error_category& result_category() noexcept;

/// Makes an `error_code` from a `ResultCode` (found by ADL, so `error_code ec =
/// ResultCode::timeout` works).
inline boost::system::error_code make_error_code(ResultCode code) noexcept {
    return {static_cast<int>(code), result_category()};
}

/// The enumerator's name, e.g. "timeout"; "unknown" for values outside the enumeration.
std::string_view to_string(ResultCode code) noexcept;

/// True when repeating the same operation later may succeed without anything else changing:
/// timeouts, refused or failed connections, busy servers, write conflicts, I/O errors, backoff,
/// exhausted pools and busy locks. Works for keyedpool codes and for the common Asio/system network
/// errors (connection refused/reset/aborted, broken pipe, end of file, timed out, unreachable).
/// Cancellation, shutdown, invalid arguments, authentication, protocol violations and lost locks
/// are not transient.
bool is_transient(const boost::system::error_code& ec) noexcept;

}  // namespace keyedpool

namespace boost::system {
template <>
struct is_error_code_enum<::keyedpool::ResultCode> : std::true_type {};
}  // namespace boost::system

#endif  // KEYEDPOOL_RESULT_CODE_HPP
