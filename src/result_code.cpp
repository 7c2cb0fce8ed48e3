// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/result_code.hpp>

#include <boost/asio/error.hpp>

#include <string>

namespace keyedpool {
namespace {

// Messages say what happened and what to do about it.
const char* message_of(ResultCode code) noexcept {
    switch (code) {
        case ResultCode::timeout:
            return "The operation did not finish in time. Check the server is reachable and not "
                   "overloaded, or raise the timeout.";
        case ResultCode::cancelled:
            return "The operation was cancelled by the library (e.g. its lock was lost). Do not "
                   "assume its effects happened.";
        case ResultCode::shutting_down:
            return "The pool or service is shutting down and accepts no new work.";
        case ResultCode::connect_failed:
            return "The client factory could not create a client. Check the endpoint and the "
                   "factory's log; the pool retries after its backoff.";
        case ResultCode::unhealthy:
            return "The factory produced a client that failed its health check straight away. "
                   "Check the "
                   "endpoint; the pool retries after its backoff.";
        case ResultCode::pool_exhausted:
            return "max_clients clients are in use and none was freed within wait_timeout. Raise "
                   "max_clients or wait_timeout, or lower idle_timeout.";
        case ResultCode::backoff:
            return "A recent attempt to create this client failed; the pool will not retry before "
                   "its "
                   "backoff deadline. Retry later.";
        case ResultCode::invalid_argument:
            return "An argument or option was invalid. Fix the caller.";
        case ResultCode::forbidden:
            return "The server refused this operation for this client. Check permissions or "
                   "server configuration; retrying will not help.";
        case ResultCode::auth_failed:
            return "The server rejected the credentials. Fix the user name or password.";
        case ResultCode::server_busy:
            return "The server is temporarily busy (loading, running a script, or overloaded). "
                   "Retry with backoff.";
        case ResultCode::write_conflict:
            return "A concurrent writer changed the data first. Re-read and retry the operation.";
        case ResultCode::protocol_error:
            return "The peer violated the protocol (garbage, truncated or oversized reply). The "
                   "connection was closed.";
        case ResultCode::io_error:
            return "A network or I/O error occurred talking to the server. Retry on a new "
                   "connection.";
        case ResultCode::lock_busy:
            return "The lock is held by someone else. Try again later or wait with async_lock.";
        case ResultCode::lock_timeout:
            return "The lock was not acquired within the configured wait. Raise the wait or find "
                   "the long holder.";
        case ResultCode::lock_lost:
            return "The lock's lease ended or could not be renewed; another holder may own the "
                   "resource. Stop the protected work and do not commit its results.";
        case ResultCode::not_lock_owner:
            return "This token does not own the lock (it expired or was taken over). Nothing was "
                   "released or extended.";
        case ResultCode::server_error:
            return "The server rejected the command (wrong arguments or type). Fix the command; "
                   "retrying will not help.";
    }
    return "Unknown keyedpool error.";
}

class ResultCategory final : public boost::system::error_category {
  public:
    // A fixed id keeps codes comparable across shared-library boundaries.
    constexpr ResultCategory() noexcept : error_category(0x6b65796564706f6fULL) {}
    const char* name() const noexcept override { return "keyedpool"; }
    std::string message(int value) const override {
        return message_of(static_cast<ResultCode>(value));
    }
    char const* message(int value, char* buffer, std::size_t length) const noexcept override {
        (void)buffer;
        (void)length;
        return message_of(static_cast<ResultCode>(value));
    }
};

}  // namespace

const boost::system::error_category& result_category() noexcept {
    static const ResultCategory category;
    return category;
}

std::string_view to_string(ResultCode code) noexcept {
    switch (code) {
        case ResultCode::timeout:
            return "timeout";
        case ResultCode::cancelled:
            return "cancelled";
        case ResultCode::shutting_down:
            return "shutting_down";
        case ResultCode::connect_failed:
            return "connect_failed";
        case ResultCode::unhealthy:
            return "unhealthy";
        case ResultCode::pool_exhausted:
            return "pool_exhausted";
        case ResultCode::backoff:
            return "backoff";
        case ResultCode::invalid_argument:
            return "invalid_argument";
        case ResultCode::forbidden:
            return "forbidden";
        case ResultCode::auth_failed:
            return "auth_failed";
        case ResultCode::server_busy:
            return "server_busy";
        case ResultCode::write_conflict:
            return "write_conflict";
        case ResultCode::protocol_error:
            return "protocol_error";
        case ResultCode::io_error:
            return "io_error";
        case ResultCode::lock_busy:
            return "lock_busy";
        case ResultCode::lock_timeout:
            return "lock_timeout";
        case ResultCode::lock_lost:
            return "lock_lost";
        case ResultCode::not_lock_owner:
            return "not_lock_owner";
        case ResultCode::server_error:
            return "server_error";
    }
    return "unknown";
}

bool is_transient(const boost::system::error_code& ec) noexcept {
    if (!ec) {
        return false;
    }
    if (ec.category() == result_category()) {
        switch (static_cast<ResultCode>(ec.value())) {
            case ResultCode::timeout:
            case ResultCode::connect_failed:
            case ResultCode::unhealthy:
            case ResultCode::pool_exhausted:
            case ResultCode::backoff:
            case ResultCode::server_busy:
            case ResultCode::write_conflict:
            case ResultCode::io_error:
            case ResultCode::lock_busy:
            case ResultCode::lock_timeout:
                return true;
            default:
                return false;
        }
    }
    namespace error = boost::asio::error;
    return ec == error::connection_refused || ec == error::connection_reset ||
           ec == error::connection_aborted || ec == error::broken_pipe || ec == error::eof ||
           ec == error::timed_out || ec == error::host_unreachable ||
           ec == error::network_unreachable || ec == error::network_down ||
           ec == error::try_again || ec == error::would_block;
}

}  // namespace keyedpool
