// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/result_code.hpp>

#include <boost/asio/error.hpp>

#include <iterator>
#include <string>
#include <string_view>

namespace keyedpool {
namespace {

/// One row per code: its name, whether it is transient, and a message that says what happened and
/// what to do about it. The only place these facts live.
struct CodeInfo {
    ResultCode code;
    std::string_view name;
    bool transient;
    const char* message;
};

constexpr CodeInfo codes[] = {
    {ResultCode::timeout, "timeout", true,
     "The operation did not finish in time. Check the server is reachable and not overloaded, "
     "or raise the timeout."},
    {ResultCode::cancelled, "cancelled", false,
     "The operation was cancelled by the library (e.g. its lock was lost). Do not assume its "
     "effects happened."},
    {ResultCode::shutting_down, "shutting_down", false,
     "The pool or service is shutting down and accepts no new work."},
    {ResultCode::connect_failed, "connect_failed", true,
     "The client factory could not create a client. Check the endpoint and the factory's log; "
     "the pool retries after its backoff."},
    {ResultCode::unhealthy, "unhealthy", true,
     "The factory produced a client that failed its health check straight away. Check the "
     "endpoint; the pool retries after its backoff."},
    {ResultCode::pool_exhausted, "pool_exhausted", true,
     "max_clients clients are in use and none was freed within wait_timeout. Raise max_clients "
     "or wait_timeout, or lower idle_timeout."},
    {ResultCode::backoff, "backoff", true,
     "A recent attempt to create this client failed; the pool will not retry before its backoff "
     "deadline. Retry later."},
    {ResultCode::invalid_argument, "invalid_argument", false,
     "An argument or option was invalid. Fix the caller."},
    {ResultCode::forbidden, "forbidden", false,
     "The server refused this operation for this client. Check permissions or server "
     "configuration; retrying will not help."},
    {ResultCode::auth_failed, "auth_failed", false,
     "The server rejected the credentials. Fix the user name or password."},
    {ResultCode::server_busy, "server_busy", true,
     "The server is temporarily busy (loading, running a script, or overloaded). Retry with "
     "backoff."},
    {ResultCode::write_conflict, "write_conflict", true,
     "A concurrent writer changed the data first. Re-read and retry the operation."},
    {ResultCode::protocol_error, "protocol_error", false,
     "The peer violated the protocol (garbage, truncated or oversized reply). The connection was "
     "closed."},
    {ResultCode::io_error, "io_error", true,
     "A network or I/O error occurred talking to the server. Retry on a new connection."},
    {ResultCode::lock_busy, "lock_busy", true,
     "The lock is held by someone else. Try again later or wait with async_lock."},
    {ResultCode::lock_timeout, "lock_timeout", true,
     "The lock was not acquired within the configured wait. Raise the wait or find the long "
     "holder."},
    {ResultCode::lock_lost, "lock_lost", false,
     "The lock's lease ended or could not be renewed; another holder may own the resource. Stop "
     "the protected work and do not commit its results."},
    {ResultCode::not_lock_owner, "not_lock_owner", false,
     "This token does not own the lock (it expired or was taken over). Nothing was released or "
     "extended."},
    {ResultCode::server_error, "server_error", false,
     "The server rejected the command (wrong arguments or type). Fix the command; retrying will "
     "not help."},
    {ResultCode::tls_failed, "tls_failed", false,
     "TLS could not be set up: a certificate or key file could not be loaded, or the handshake "
     "failed (untrusted certificate, name mismatch, client certificate refused). Fix the "
     "certificates or the server name; retrying will not help."},
    {ResultCode::not_replicated, "not_replicated", true,
     "Fewer replicas than required acknowledged the write in time; a lock taken that way was "
     "given back. Check the replicas' health and lag, then retry."},
    {ResultCode::too_many_redirects, "too_many_redirects", true,
     "A Redis Cluster command was redirected (MOVED/ASK) more often than allowed: the slot is "
     "moving or the nodes disagree about its owner. Retry once the cluster has settled."},
};

// The table is indexed by value - 1: every enumerator, in order, none missing.
constexpr bool table_is_complete() {
    for (std::size_t i = 0; i < std::size(codes); ++i) {
        if (static_cast<std::size_t>(codes[i].code) != i + 1) {
            return false;
        }
    }
    return std::size(codes) == static_cast<std::size_t>(ResultCode::too_many_redirects);
}
static_assert(table_is_complete(), "one row per ResultCode, in value order");

const CodeInfo* info_of(int value) noexcept {
    if (value < 1 || static_cast<std::size_t>(value) > std::size(codes)) {
        return nullptr;
    }
    return &codes[value - 1];
}

const char* message_of(int value) noexcept {
    const CodeInfo* info = info_of(value);
    return info ? info->message : "Unknown keyedpool error.";
}

class ResultCategory final : public boost::system::error_category {
  public:
    // A fixed id keeps codes comparable across shared-library boundaries.
    constexpr ResultCategory() noexcept : error_category(0x6b65796564706f6fULL) {}
    const char* name() const noexcept override { return "keyedpool"; }
    std::string message(int value) const override { return message_of(value); }
    char const* message(int value, char* buffer, std::size_t length) const noexcept override {
        (void)buffer;
        (void)length;
        return message_of(value);
    }
};

}  // namespace

const boost::system::error_category& result_category() noexcept {
    static const ResultCategory category;
    return category;
}

std::string_view to_string(ResultCode code) noexcept {
    const CodeInfo* info = info_of(static_cast<int>(code));
    return info ? info->name : "unknown";
}

bool is_transient(const boost::system::error_code& ec) noexcept {
    if (!ec) {
        return false;
    }
    if (ec.category() == result_category()) {
        const CodeInfo* info = info_of(ec.value());
        return info != nullptr && info->transient;
    }
    namespace error = boost::asio::error;
    return ec == error::connection_refused || ec == error::connection_reset ||
           ec == error::connection_aborted || ec == error::broken_pipe || ec == error::eof ||
           ec == error::timed_out || ec == error::host_unreachable ||
           ec == error::network_unreachable || ec == error::network_down ||
           ec == error::try_again || ec == error::would_block;
}

}  // namespace keyedpool
