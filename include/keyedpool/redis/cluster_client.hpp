// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_REDIS_CLUSTER_CLIENT_HPP
#define KEYEDPOOL_REDIS_CLUSTER_CLIENT_HPP

/// \file
/// `keyedpool::redis::ClusterClient`: commands to a Redis Cluster, each routed to the primary that
/// serves its keys' hash slot, over one shared connection per node.

#include <keyedpool/pool_stats.hpp>
#include <keyedpool/redis/cluster.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/reply.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyedpool::redis {

/// Where a cluster is and how to talk to its nodes. Validated by `ClusterClient::async_connect`
/// (invalid values throw `std::invalid_argument` naming the field). `parse_cluster_url` fills one
/// from a `redis-cluster://` URL.
struct ClusterConfig {
    /// Nodes to ask for the slot map, in order (the first that answers is used; afterwards the
    /// known primaries are asked first). Any node of the cluster will do. Must not be empty; each
    /// needs a host and a port.
    std::vector<Endpoint> seeds;
    /// How to connect to every node: TLS, AUTH, timeouts, limits, the health check. `host` and
    /// `port` are ignored (the slot map names the nodes); `unix_socket` and `sentinel` must be
    /// empty and `database` 0 (a cluster has only database 0). With TLS, `tls.server_name` empty
    /// means each node's address is checked against its own certificate.
    ConnectionConfig node{};
    /// How many `MOVED`/`ASK` redirects one command may follow before it completes with
    /// `ResultCode::too_many_redirects`. Must be >= 1.
    int max_redirects = 5;
};

/// Throws `std::invalid_argument` naming the first invalid field of `config`.
void validate(const ClusterConfig& config);

/// Parses `redis-cluster://[[user]:password@]host[:port][,host[:port]...]` (TLS:
/// `rediss-cluster://`) into `defaults` with its seeds, credentials and TLS switch replaced. Ports
/// default to 6379; hosts may be names, IPv4 or bracketed IPv6 addresses. A path other than `/`
/// or `/0`, a query or a fragment is refused.
/// \throws std::invalid_argument naming the part that is wrong; never with the URL or password.
ClusterConfig parse_cluster_url(std::string_view url, ClusterConfig defaults);
/// `parse_cluster_url(url, ClusterConfig{})`.
ClusterConfig parse_cluster_url(std::string_view url);

/// Counters of a `ClusterClient`.
struct ClusterStats {
    /// Slot maps loaded (the first included).
    std::uint64_t map_refreshes = 0;
    /// `MOVED` replies followed.
    std::uint64_t moved = 0;
    /// `ASK` replies followed.
    std::uint64_t asked = 0;
    /// Commands that gave up with `ResultCode::too_many_redirects`.
    std::uint64_t redirect_limit_hits = 0;
    /// Primaries in the current map.
    std::size_t primaries = 0;
    /// The per-node connection pool (`builds`: connections opened).
    PoolStats connections{};
};

/// A Redis Cluster client: the command API of `Connection`, routed by hash slot.
///
/// **Routing.** A command goes to the primary serving the hash slot of its keys (`hash_slot`; the
/// keys are found by the command's name: see `docs/deployments.md`). Keys in different slots →
/// `ResultCode::invalid_argument` before anything is sent (use a hash tag: `{user:42}:a`,
/// `{user:42}:b`). A keyless command (PING, INFO, ...) goes to any primary.
///
/// **Connections.** One connection per primary, shared by every command to it (pipelined), held in
/// a `KeyedClientPool` keyed by endpoint: however many commands discover a node at once, one
/// connection is opened; a failed one is replaced on the next command.
///
/// **The slot map** comes from `CLUSTER SLOTS` when connecting, and again (one load, however many
/// commands ask for it at once) when:
/// - a node answers `-MOVED slot host:port`: the slot moved for good. The command is retried at
///   the node named, and the map reloaded;
/// - a node cannot be reached, or its connection fails under a command: the map is reloaded in
///   the background, at most every 100 ms (a failover may have promoted a replica); the command
///   completes with the connection's error (`io_error`, `connect_failed`, `backoff`, `timeout`:
///   it may or may not have run, so it is not retried — transient codes: retry it);
/// - a slot has no primary in the map.
/// `-ASK slot host:port` (the slot is migrating and this key is already on the target) is
/// retried once at the node named, preceded by `ASKING` on the same connection
/// (`Connection::async_exec_asking`); the map is not reloaded. A command follows at most
/// `max_redirects` redirects, then completes with `ResultCode::too_many_redirects`.
/// `-TRYAGAIN` (a multi-key command during a migration) and `-CLUSTERDOWN` complete with
/// `ResultCode::server_busy`: transient, retry later.
///
/// Thread safety: distinct objects: safe. Shared object: safe. Handlers run on their associated
/// executor (default: the client's), never inside the initiating call.
class ClusterClient {
  public:
    using executor_type = boost::asio::any_io_executor;

    /// Loads the slot map from the first seed that answers. Handler signature:
    /// `void(boost::system::error_code, std::shared_ptr<ClusterClient>)`. Errors: the last
    /// seed's (`connect_failed`, `timeout`, `auth_failed`, `tls_failed`, ...),
    /// `ResultCode::protocol_error` for a map that is not one, `ResultCode::server_busy` when the
    /// cluster leaves slots unserved.
    /// \throws std::invalid_argument if `config` is invalid.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    static auto async_connect(executor_type executor, ClusterConfig config,
                              CompletionToken&& token = {}) {
        validate(config);
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code,
                                                                 std::shared_ptr<ClusterClient>)>(
            [](auto handler, executor_type ex, ClusterConfig cfg) {
                connect_erased(std::move(ex), std::move(cfg), std::move(handler));
            },
            token, std::move(executor), std::move(config));
    }

    /// Sends `command` to the primary serving its keys and waits for the reply, following
    /// redirects (see the class). Handler signature: `void(boost::system::error_code, Reply)`.
    /// Errors: those of `Connection::async_exec`, `invalid_argument` (keys in several slots),
    /// `too_many_redirects`, `server_busy` (TRYAGAIN, CLUSTERDOWN), `shutting_down` after
    /// `close()`, `operation_aborted` when cancelled (per-operation cancellation reaches the
    /// command as in `Connection::async_exec`).
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_exec(std::vector<std::string> command, CompletionToken&& token = {}) {
        return async_exec_until(std::move(command), std::chrono::steady_clock::time_point::max(),
                                std::forward<CompletionToken>(token));
    }

    /// `async_exec` bounded by `deadline` (`ResultCode::timeout`), redirects and connecting
    /// included.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_exec_until(std::vector<std::string> command,
                          std::chrono::steady_clock::time_point deadline,
                          CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Reply)>(
            [this](auto handler, std::vector<std::string> arguments,
                   std::chrono::steady_clock::time_point until) {
                exec_erased(std::move(arguments), until, std::move(handler));
            },
            token, std::move(command), deadline);
    }

    /// The connection to the primary serving `slot` (opened if needed), for what must run on one
    /// connection (e.g. `WAIT` after a write, `SSUBSCRIBE`). Reloads the map first when the slot
    /// has no primary. Handler signature:
    /// `void(boost::system::error_code, std::shared_ptr<Connection>)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_connection_for(std::uint16_t slot, std::chrono::steady_clock::time_point deadline,
                              CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code,
                                                                 std::shared_ptr<Connection>)>(
            [this](auto handler, std::uint16_t s, std::chrono::steady_clock::time_point until) {
                connection_for_erased(s, until, std::move(handler));
            },
            token, slot, deadline);
    }

    /// The primary serving `slot` in the current map, if any. Never waits.
    std::optional<Endpoint> primary_for(std::uint16_t slot) const;

    /// Reloads the slot map now (after `generation` at the latest: when the map changed since the
    /// caller saw `generation`, completes at once). Handler: `void(boost::system::error_code)`.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_refresh(std::uint64_t generation, CompletionToken&& token = {}) {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
            [this](auto handler, std::uint64_t g) { refresh_erased(g, std::move(handler)); }, token,
            generation);
    }

    /// How many slot maps were loaded so far (see `async_refresh`).
    std::uint64_t map_generation() const noexcept;

    ClusterStats stats() const;

    /// Closes every connection; later commands complete with `ResultCode::shutting_down`.
    /// Idempotent.
    void close() noexcept;

    /// True until `close()` (a node's failure is handled inside). With `close()`, this makes
    /// the client a `KeyedClientPool` client under the default traits.
    bool is_connected() const noexcept;

    executor_type get_executor() const noexcept;

    /// Closes the client.
    ~ClusterClient();

    ClusterClient(const ClusterClient&) = delete;
    ClusterClient& operator=(const ClusterClient&) = delete;

    struct Impl;
    explicit ClusterClient(std::shared_ptr<Impl> impl) noexcept;

  private:
    static void connect_erased(executor_type executor, ClusterConfig config,
                               boost::asio::any_completion_handler<
                                   void(boost::system::error_code, std::shared_ptr<ClusterClient>)>
                                   handler);
    void exec_erased(
        std::vector<std::string> command, std::chrono::steady_clock::time_point deadline,
        boost::asio::any_completion_handler<void(boost::system::error_code, Reply)> handler);
    void connection_for_erased(std::uint16_t slot, std::chrono::steady_clock::time_point deadline,
                               boost::asio::any_completion_handler<
                                   void(boost::system::error_code, std::shared_ptr<Connection>)>
                                   handler);
    void refresh_erased(
        std::uint64_t generation,
        boost::asio::any_completion_handler<void(boost::system::error_code)> handler);

    std::shared_ptr<Impl> impl_;
};

}  // namespace keyedpool::redis

#endif  // KEYEDPOOL_REDIS_CLUSTER_CLIENT_HPP
