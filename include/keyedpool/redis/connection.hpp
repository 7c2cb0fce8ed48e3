// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_CONNECTION_HPP
#define KEYEDPOOL_REDIS_CONNECTION_HPP

/// \file
/// `keyedpool::redis::Connection`: an asynchronous, pipelined, multiplexed Redis connection.

#include <keyedpool/redis/reply.hpp>
#include <keyedpool/result_code.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace keyedpool::redis {

/// Builds a command from its arguments: strings (anything convertible to `std::string_view`) and
/// integers, e.g. `command("SET", key, "v", "PX", 1500)`. Arguments are binary-safe.
///
/// Prefer it to a braced list inside `co_await`: `co_await c->async_exec(command("GET", key))`.
/// (g++ 12 fails to compile a braced list inside a `co_await` expression, "array used as
/// initializer"; a braced list in a separate statement is fine.)
template <typename... Arguments>
std::vector<std::string> command(const Arguments&... arguments) {
    auto to_argument = [](const auto& argument) -> std::string {
        using T = std::decay_t<decltype(argument)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                      !std::is_same_v<T, char>) {
            return std::to_string(argument);
        } else {
            return std::string(std::string_view(argument));
        }
    };
    return {to_argument(arguments)...};
}

/// TLS for a connection (`ConnectionConfig::tls`), over OpenSSL. Files are PEM. A file that cannot
/// be loaded, or a handshake that fails (certificate not trusted, name mismatch, client certificate
/// refused), fails the connect with `ResultCode::tls_failed`; the cause is in the log.
struct TlsConfig {
    /// Speak TLS. Off by default (`rediss://` URLs turn it on).
    bool enabled = false;
    /// Verify the server: its certificate chain against the CAs below, and its name (the
    /// certificate's subjectAltName or common name must match `server_name`). On by default; off
    /// only for tests against self-signed servers you cannot give a CA for.
    bool verify_peer = true;
    /// CA certificates to trust (a PEM file, and/or a directory prepared with `openssl rehash`).
    /// Both empty: the system's default CAs (Debian's ca-certificates).
    std::string ca_file;
    std::string ca_path;
    /// The name the server's certificate must carry, also sent as SNI (unless it is an IP
    /// address). Empty: `ConnectionConfig::host`.
    std::string server_name;
    /// A client certificate (chain) and its private key, for servers that require one
    /// (`tls-auth-clients yes`). Both or neither.
    std::string cert_file;
    std::string key_file;
};

/// A host and TCP port.
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// Redis Sentinel (`ConnectionConfig::sentinel`): the primary is found by asking the sentinels,
/// not configured. See `Connection::async_connect` and docs/deployments.md.
struct SentinelConfig {
    /// The sentinels to ask, in order (the first that answers is used). Empty: no Sentinel.
    std::vector<Endpoint> sentinels;
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    std::string master_name;
    /// For sentinels that require AUTH (`requirepass` / `sentinel sentinel-pass`); the data
    /// nodes use `ConnectionConfig::username` / `password`.
    std::string username;
    std::string password;
};

/// Where and how to connect. Validated by `Connection::async_connect` (invalid values throw
/// `std::invalid_argument` naming the field). `parse_url` (keyedpool/redis/url.hpp) fills one from
/// a `redis://`, `rediss://` or `unix://` URL.
struct ConnectionConfig {
    /// Host name or IP address. Must not be empty (unless `unix_socket` is set).
    std::string host = "127.0.0.1";
    /// TCP port. Must not be 0 (unless `unix_socket` is set).
    std::uint16_t port = 6379;
    /// A unix domain socket path (Redis `unixsocket`): when not empty, the connection goes there
    /// and `host`/`port` are ignored. At most 107 bytes; not with TLS.
    std::string unix_socket;
    /// TLS over TCP (see `TlsConfig`); off by default. With Sentinel it applies to the sentinels
    /// and the primary alike.
    TlsConfig tls;
    /// Find the primary through Redis Sentinel (see `SentinelConfig`): when `sentinel.sentinels`
    /// is not empty, `host`, `port` and `unix_socket` are ignored.
    SentinelConfig sentinel;
    /// With `password`: `AUTH username password` (Redis 6 ACL). Empty: `AUTH password`.
    std::string username;
    /// Sent with AUTH right after connecting when not empty.
    std::string password;
    /// `SELECT database` right after connecting when not 0. Must be >= 0.
    int database = 0;
    /// Bound on resolving, connecting and the AUTH/SELECT handshake together (→
    /// `ResultCode::timeout`). Must be > 0.
    std::chrono::steady_clock::duration connect_timeout = std::chrono::seconds(5);
    /// Largest reply accepted: its bytes on the wire plus what its value holds (string bytes, and
    /// one `Reply` per array element). Declared sizes are checked before anything is allocated
    /// or waited for: a reply that declares more than fits (`*16000000`, `$999999999999`), is
    /// larger, or nests arrays deeper than 32 levels fails every pending command with
    /// `ResultCode::protocol_error` and closes the connection at once. Must be > 0.
    std::size_t max_reply_bytes = 64 * 1024 * 1024;
    /// Longest a command may wait for its reply, counted from the call to `async_exec`; zero (the
    /// default): no limit of its own (the health check still applies). When a command's time is
    /// up, the server is taken to be stuck: the connection is closed and every command pending
    /// on it completes with `ResultCode::timeout`. Must be >= 0.
    std::chrono::steady_clock::duration command_timeout{0};
    /// The health check, two ways of finding a dead or stuck server (zero turns both off):
    /// - while commands wait for replies, the server must send something at least this often:
    ///   after this long without a byte the connection is closed and every pending command
    ///   completes with `ResultCode::timeout` (a server stopped by SIGSTOP, or a peer gone
    ///   without closing). A blocking command (BLPOP, XREAD BLOCK...) that may wait longer needs
    ///   a longer interval, or a connection of its own with the check off;
    /// - an idle connection has TCP keepalive probes sent after this long without traffic (then
    ///   every third of it, 3 unanswered probes end it), so a dead peer host or a broken path
    ///   closes it: `is_connected()` turns false and `KeyedClientPool` replaces it.
    /// Must be >= 0; when not zero, at least 1 ms.
    std::chrono::steady_clock::duration health_check_interval = std::chrono::seconds(5);
};

/// Throws `std::invalid_argument` naming the first invalid field of `config`.
void validate(const ConnectionConfig& config);

/// One connection to a Redis server (TCP, TLS over TCP, or a unix domain socket), shared by any
/// number of concurrent callers.
///
/// Commands issued concurrently are pipelined: they are written in the order `async_exec` was
/// called, and each completes with its own reply, matched in order. A command issued while none is
/// on the way is written at once, from `async_exec` (no handler hop); commands issued while others
/// are on the way are batched into one write. A reply completes its command by dispatch from the
/// read loop, so a coroutine waiting on it resumes without another trip through the scheduler.
/// Error replies complete with the code their leading word maps to (`Reply::error_code`, e.g.
/// NOAUTH → `ResultCode::auth_failed`, LOADING → `ResultCode::server_busy`) and still carry the
/// reply, whose text is the server's.
///
/// When the connection fails (I/O error, the server closes it, it sends something that is not
/// RESP2 or is larger than `max_reply_bytes`, or it stays silent past `command_timeout` or the
/// health check) every pending command completes with `ResultCode::io_error`,
/// `ResultCode::protocol_error` or `ResultCode::timeout`, the socket is closed, and
/// `is_connected()` becomes false; later commands complete with `ResultCode::io_error`. There is no
/// automatic reconnection: use `KeyedClientPool` (which replaces a client that is not connected) or
/// connect again.
///
/// `Connection` satisfies `KeyedClientPool`'s default traits: `is_connected()` and `close()`.
///
/// Thread safety: distinct objects: safe. Shared object: safe (every member function may be called
/// concurrently; all I/O runs on an internal strand). Handlers run on their associated executor
/// (default: the connection's), never inside the initiating call.
class Connection {
  public:
    using executor_type = boost::asio::any_io_executor;
    /// Receives pub/sub messages (`["message", channel, payload]` arrays) when set.
    using PushHandler = std::function<void(Reply)>;

    /// Connects, then authenticates and selects the database as configured.
    ///
    /// With Sentinel (`config.sentinel`): asks the sentinels in order for the primary
    /// (`SENTINEL get-master-addr-by-name`), connects to it, confirms it with `ROLE` (a node that
    /// is not a primary is refused: `ResultCode::connect_failed`) and reads the configuration
    /// epoch the sentinel holds for that primary. Then the connection follows the sentinel's
    /// `+switch-master` messages: when the primary moves, it is closed and every pending command
    /// completes with `ResultCode::io_error` (transient: `KeyedClientPool` or `retry` make a new
    /// connection, which asks the sentinels again). A `-READONLY` reply (the node was demoted)
    /// closes it too. `connect_timeout` bounds the whole, sentinels included.
    /// Handler signature: `void(boost::system::error_code, std::shared_ptr<Connection>)`.
    /// Errors: `ResultCode::connect_failed` (resolve/connect failed; the cause is logged),
    /// `ResultCode::tls_failed` (TLS files or handshake; the cause is logged),
    /// `ResultCode::timeout` (`connect_timeout`, which bounds the TLS handshake too),
    /// `ResultCode::auth_failed`, or the code of a failed SELECT.
    /// \throws std::invalid_argument if `config` is invalid.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    static auto async_connect(executor_type executor, ConnectionConfig config,
                              CompletionToken&& token = {}) {
        validate(config);
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code,
                                                                 std::shared_ptr<Connection>)>(
            [](auto handler, executor_type ex, ConnectionConfig cfg) {
                connect_erased(std::move(ex), std::move(cfg), std::move(handler));
            },
            token, std::move(executor), std::move(config));
    }

    /// Sends one command (its arguments, e.g. `{"SET", "key", "value"}`) and waits for its reply.
    /// Handler signature: `void(boost::system::error_code, Reply)`.
    ///
    /// Errors: the code of an error reply (see the class), `ResultCode::io_error` or
    /// `ResultCode::protocol_error` when the connection fails, `ResultCode::timeout` when
    /// `command_timeout` or the health check ends it, `operation_aborted` on `close()` or a
    /// cancellation.
    ///
    /// Per-operation cancellation (the handler's cancellation slot; e.g. a `parallel_group`, a
    /// timer, a cancelled coroutine):
    /// - a command not written yet is dropped, whatever the cancellation type: it never reaches
    ///   the server (`total`: no side effect);
    /// - a command already written completes at once on `terminal` or `partial` cancellation; the
    ///   server may still run it (`partial`: its effect is unknown). Its reply is read and
    ///   dropped when it comes, so the connection stays usable and the other commands keep
    ///   their replies. A `total`-only cancellation of a written command is ignored.
    /// The handler completes with `operation_aborted` either way.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_exec(std::vector<std::string> command, CompletionToken&& token = {}) {
        return async_exec_until(std::move(command), std::chrono::steady_clock::time_point::max(),
                                std::forward<CompletionToken>(token));
    }

    /// `async_exec` with a deadline of the caller's own: when no reply has come by `deadline`,
    /// the command completes with `ResultCode::timeout` and is handled as a cancellation (dropped
    /// if not written yet; written: its reply is dropped when it comes). The connection stays
    /// open: this is the caller's budget, where `command_timeout` is a verdict on the server.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_exec_until(std::vector<std::string> command,
                          std::chrono::steady_clock::time_point deadline,
                          CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Reply)>(
            [this](auto handler, std::vector<std::string> arguments,
                   std::chrono::steady_clock::time_point until) {
                exec_erased(std::move(arguments), until, false, std::move(handler));
            },
            token, std::move(command), deadline);
    }

    /// `async_exec_until` for a command Redis Cluster redirected with `-ASK`: sends `ASKING`
    /// immediately followed by `command`, as one unit no other caller's command can come between
    /// (the flag ASKING sets applies to the connection's next command). ASKING's reply is read and
    /// dropped; the handler gets the command's. Cancelled before it is written, neither is
    /// written. `ClusterClient` uses it; a caller routing by hand may too.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_exec_asking(std::vector<std::string> command,
                           std::chrono::steady_clock::time_point deadline,
                           CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Reply)>(
            [this](auto handler, std::vector<std::string> arguments,
                   std::chrono::steady_clock::time_point until) {
                exec_erased(std::move(arguments), until, true, std::move(handler));
            },
            token, std::move(command), deadline);
    }

    /// Installs a handler for pub/sub messages. Call before subscribing. The handler runs on the
    /// connection's strand and must not block.
    void set_push_handler(PushHandler handler);

    /// Completes when the connection fails or is closed, with the code its pending commands got
    /// (`ResultCode::io_error`, `timeout`, `protocol_error`, or `operation_aborted` after
    /// `close()`); at once when that already happened. For subscribers: a connection that dies
    /// takes its subscriptions with it, and whoever waits for a message wants to know now.
    /// Handler signature: `void(boost::system::error_code)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_wait_closed(CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler) { wait_closed_erased(std::move(handler)); }, token);
    }

    /// True until the connection fails or is closed.
    bool is_connected() const noexcept;

    /// Closes the socket; pending commands complete with `operation_aborted`. Idempotent.
    void close() noexcept;

    /// Commands written to this connection so far.
    std::uint64_t commands_sent() const noexcept;

    /// The server this connection talks to (with Sentinel: the primary it was given).
    Endpoint endpoint() const;

    /// With Sentinel: the primary's configuration epoch when this connection was made (it grows
    /// with every failover; the lock service puts it in the high bits of fencing tokens). 0
    /// without Sentinel.
    std::uint64_t config_epoch() const noexcept;

    executor_type get_executor() const noexcept;

    /// Closes the connection.
    ~Connection();

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    struct Impl;
    explicit Connection(std::shared_ptr<Impl> impl) noexcept;

  private:
    static void connect_erased(executor_type executor, ConnectionConfig config,
                               boost::asio::any_completion_handler<
                                   void(boost::system::error_code, std::shared_ptr<Connection>)>
                                   handler);
    void exec_erased(
        std::vector<std::string> command, std::chrono::steady_clock::time_point deadline,
        bool asking,
        boost::asio::any_completion_handler<void(boost::system::error_code, Reply)> handler);
    void wait_closed_erased(
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler);

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_CONNECTION_HPP
