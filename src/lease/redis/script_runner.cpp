// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "script_runner.hpp"

// GCC 12 with -fsanitize=thread at -O2 inlines Asio's coroutine frame allocation into `run` and
// then reports its (matching) aligned deallocation as a mismatched delete: a false positive of
// the inliner, not of this file's code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <keyedpool/logging.hpp>
#include <keyedpool/redis/cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <string_view>
#include <tuple>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

lease::AttemptResult read_attempt(const error_code& ec, const Reply& reply) {
    using lease::AttemptResult;
    if (ec) {
        return AttemptResult{ec, false, 0, std::nullopt};
    }
    if (reply.type() != ReplyType::array || reply.elements().size() != 2) {
        return AttemptResult{ResultCode::protocol_error, false, 0, std::nullopt};
    }
    const auto flag = reply.elements()[0].as_integer();
    const auto value = reply.elements()[1].as_integer();
    if (flag == 1) {
        return AttemptResult{error_code{}, true, static_cast<std::uint64_t>(value), std::nullopt};
    }
    if (value < 0) {  // PTTL-like: no holder with a lease (0 is "less than 1 ms left")
        return AttemptResult{error_code{}, false, 0, std::nullopt};
    }
    return AttemptResult{error_code{}, false, 0, std::chrono::milliseconds(std::max(value, 1LL))};
}

namespace {

/// A command bounded by `deadline` (the connection's own deadline: no timer of ours); the
/// caller's cancellation reaches the command. On one connection, or routed by a cluster client.
template <typename Target>
asio::awaitable<std::pair<error_code, Reply>> exec(Target& target, std::vector<std::string> command,
                                                   clock::time_point deadline) {
    auto [ec, reply] = co_await target.async_exec_until(std::move(command), deadline,
                                                        asio::as_tuple(asio::use_awaitable));
    co_return std::pair{ec, std::move(reply)};
}

}  // namespace

std::string Script::sharded(const char* body) {
    std::string text = body;
    constexpr std::string_view publish = "'PUBLISH'";
    for (auto at = text.find(publish); at != std::string::npos; at = text.find(publish, at)) {
        text.replace(at, publish.size(), "'SPUBLISH'");
    }
    return text;
}

Script ScriptRunner::copy(const Script& script) {
    std::lock_guard lock(mutex_);
    return script;
}

asio::awaitable<std::pair<error_code, Reply>> ScriptRunner::run(LeaseConnections& connections,
                                                                Script& script,
                                                                std::vector<std::string> keys,
                                                                std::vector<std::string> args,
                                                                clock::time_point deadline) {
    // One server (its "commands" connection), or the cluster (routed by the keys' slot).
    std::shared_ptr<Connection> single;
    std::shared_ptr<ClusterClient> cluster;
    if (connections.on_cluster()) {
        auto [get_ec, got] = co_await connections.cluster_client(deadline);
        if (get_ec) {
            co_return std::pair{get_ec, Reply{}};
        }
        cluster = std::move(got);
    } else {
        const ConnectionRole commands;  // named: g++ 12 miscompiles a temporary in a co_await
        auto [get_ec, got] = co_await connections.connection(commands, deadline);
        if (get_ec) {
            co_return std::pair{get_ec, Reply{}};
        }
        single = std::move(got);
    }
    auto send = [&](std::vector<std::string> cmd) {
        return cluster ? exec(*cluster, std::move(cmd), deadline)
                       : exec(*single, std::move(cmd), deadline);
    };
    const std::string& body = cluster ? script.sharded_body : script.plain_body;
    std::string sha;
    {
        std::lock_guard lock(mutex_);
        sha = script.sha;
    }
    if (sha.empty()) {
        // On a cluster this loads it on one primary; the others learn it from the EVAL below.
        auto [load_ec, loaded] = co_await send(command("SCRIPT", "LOAD", body));
        if (load_ec) {
            co_return std::pair{load_ec, std::move(loaded)};
        }
        sha = loaded.text();
        std::lock_guard lock(mutex_);
        script.sha = sha;
    }
    if (script.hands_out_fences) {
        // Fencing tokens never go backwards across a failover: they start above epoch << 32 on a
        // primary Sentinel promoted at that epoch; on a cluster the script reads the node's own
        // epoch (-1) (docs/locks.md).
        args.push_back(cluster ? std::string("-1") : std::to_string(single->config_epoch()));
    }
    auto build = [&](std::string first, std::string what) {
        std::vector<std::string> cmd{std::move(first), std::move(what),
                                     std::to_string(keys.size())};
        cmd.insert(cmd.end(), keys.begin(), keys.end());
        cmd.insert(cmd.end(), args.begin(), args.end());
        return cmd;
    };
    requests_sent_.fetch_add(1, std::memory_order_relaxed);
    auto [ec, reply] = co_await send(build("EVALSHA", sha));
    if (ec && reply.server_error() == ServerError::noscript) {  // a restart, another cluster node
        std::tie(ec, reply) = co_await send(build("EVAL", body));
    }
    if (!ec && script.replicated && options_.min_replicas_acked > 0) {
        // WAIT on the connection that wrote: on a cluster, the slot's primary's (the map changes
        // only after a MOVED, which the client followed there). A script served through ASK (its
        // slot mid-migration) ran on the target, so this WAIT on the source counts other writes:
        // a rare window, where the lock may be less replicated than asked.
        std::shared_ptr<Connection> wrote = single;
        if (cluster) {
            std::tie(ec, wrote) = co_await cluster->async_connection_for(
                hash_slot(keys.front()), deadline, asio::as_tuple(asio::use_awaitable));
        }
        if (!ec) {
            ec = co_await replicas_acked(*wrote, deadline);
        }
    }
    co_return std::pair{ec, std::move(reply)};
}

/// `WAIT`s, on the connection that just wrote, for `min_replicas_acked` replicas to have what it
/// wrote: success, or `ResultCode::not_replicated` (the count is logged).
asio::awaitable<error_code> ScriptRunner::replicas_acked(Connection& connection,
                                                         clock::time_point deadline) {
    const auto wait_ms =
        std::max<long long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::min(options_.replicas_ack_timeout, deadline - clock::now()))
                                   .count());
    auto [ec, acked] =
        co_await exec(connection, command("WAIT", options_.min_replicas_acked, wait_ms), deadline);
    if (ec) {
        co_return ec == ResultCode::timeout ? error_code(ResultCode::not_replicated) : ec;
    }
    if (acked.as_integer() < options_.min_replicas_acked) {
        (options_.logger ? options_.logger : logger())
            ->warn("keyedpool: {} of {} replicas acknowledged a lease write within {} ms",
                   acked.as_integer(), options_.min_replicas_acked, wait_ms);
        co_return ResultCode::not_replicated;
    }
    co_return error_code{};
}

}  // namespace keyedpool::redis::detail
