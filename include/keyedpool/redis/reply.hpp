// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_REPLY_HPP
#define KEYEDPOOL_REDIS_REPLY_HPP

/// \file
/// A Redis (RESP2) reply as a typed value.

#include <keyedpool/result_code.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace keyedpool::redis {

/// The RESP2 reply types.
enum class ReplyType { nil, integer, status, string, array, error };

/// The error kinds of a Redis error reply, from its leading word (the protocol's error code, e.g.
/// `-NOSCRIPT No matching script`). Parsed once when the reply arrives.
enum class ServerError {
    none,         ///< not an error reply
    other,        ///< a leading word not listed here
    err,          ///< ERR: generic error (syntax, wrong arguments)
    wrongtype,    ///< WRONGTYPE: operation against a key holding the wrong kind of value
    noauth,       ///< NOAUTH: authentication required
    wrongpass,    ///< WRONGPASS: invalid user name or password
    noperm,       ///< NOPERM: the user lacks the permission (ACL)
    loading,      ///< LOADING: the server is loading its dataset
    busy,         ///< BUSY: a script is running
    tryagain,     ///< TRYAGAIN: multi-key operation during resharding
    masterdown,   ///< MASTERDOWN: replica lost its master
    clusterdown,  ///< CLUSTERDOWN: the cluster is down
    readonly,     ///< READONLY: write against a read-only replica
    oom,          ///< OOM: the command is not allowed when used memory > maxmemory
    misconf,      ///< MISCONF: persistence errors stop writes
    noscript,     ///< NOSCRIPT: EVALSHA of a script the server does not have
    execabort,    ///< EXECABORT: a transaction was discarded
    moved,        ///< MOVED <slot> <host:port>: a cluster node does not serve the key's slot
    ask,          ///< ASK <slot> <host:port>: the key's slot is migrating; ask that node once
    crossslot,    ///< CROSSSLOT: a cluster command's keys span several slots
};

/// The leading word of an error reply's text, classified.
ServerError classify_server_error(std::string_view error_text) noexcept;

/// The `ResultCode` an error kind maps to: NOAUTH/WRONGPASS → auth_failed, NOPERM → forbidden,
/// LOADING/BUSY/TRYAGAIN/MASTERDOWN/CLUSTERDOWN/READONLY/OOM/MISCONF → server_busy, everything else
/// → server_error. `none` maps to success.
boost::system::error_code to_error_code(ServerError kind) noexcept;

/// A reply: nil, integer, status, bulk string, array, or error. Regular value type.
class Reply {
  public:
    /// A nil reply.
    Reply() = default;

    static Reply nil() { return Reply{}; }
    static Reply integer(long long value);
    static Reply status(std::string text);
    static Reply string(std::string bytes);
    static Reply array(std::vector<Reply> elements);
    static Reply error(std::string text);

    ReplyType type() const noexcept { return type_; }
    bool is_nil() const noexcept { return type_ == ReplyType::nil; }
    bool is_error() const noexcept { return type_ == ReplyType::error; }

    /// The value of an integer reply (0 for other types).
    long long as_integer() const noexcept { return integer_; }
    /// The text of a status or error reply, or the bytes of a bulk string (empty for other types).
    const std::string& text() const noexcept { return text_; }
    /// The elements of an array reply (empty for other types).
    const std::vector<Reply>& elements() const noexcept { return elements_; }
    std::vector<Reply>& elements() noexcept { return elements_; }

    /// For an error reply, its kind (from the leading word); `ServerError::none` otherwise.
    ServerError server_error() const noexcept { return server_error_; }
    /// For an error reply, the mapped `ResultCode`; success otherwise.
    boost::system::error_code error_code() const noexcept { return to_error_code(server_error_); }

    friend bool operator==(const Reply&, const Reply&) = default;

  private:
    ReplyType type_ = ReplyType::nil;
    long long integer_ = 0;
    std::string text_;
    std::vector<Reply> elements_;
    ServerError server_error_ = ServerError::none;
};

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_REPLY_HPP
