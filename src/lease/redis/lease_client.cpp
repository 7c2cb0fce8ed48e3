// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "lease_client.hpp"

#include "../../redis/pooled_connection.hpp"

#include <keyedpool/logging.hpp>
#include <keyedpool/redis/cluster.hpp>

#include <fmt/format.h>

#include "../core/lock_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <tuple>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

long long lease_ms(clock::duration lease) {
    return std::chrono::ceil<std::chrono::milliseconds>(lease).count();
}

void validate(const RedisLockServiceOptions& options, const char* name) {
    if (options.cluster.seeds.empty()) {
        validate(options.connection);
    } else {
        validate(options.cluster);
    }
    if (options.key_prefix.empty() || options.key_prefix.find_first_of("{}") != std::string::npos) {
        throw std::invalid_argument(std::string(name) +
                                    ".key_prefix must be non-empty and contain no '{' or '}'");
    }
    if (options.recheck_interval <= clock::duration::zero()) {
        throw std::invalid_argument(std::string(name) + ".recheck_interval must be > 0");
    }
    if (options.request_timeout <= clock::duration::zero()) {
        throw std::invalid_argument(std::string(name) + ".request_timeout must be > 0");
    }
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument(std::string(name) + ".max_resource_bytes must be > 0");
    }
    if (options.min_replicas_acked < 0) {
        throw std::invalid_argument(std::string(name) + ".min_replicas_acked must be >= 0");
    }
    if (options.min_replicas_acked > 0 &&
        options.replicas_ack_timeout < std::chrono::milliseconds(1)) {
        throw std::invalid_argument(std::string(name) +
                                    ".replicas_ack_timeout must be >= 1 ms when min_replicas_acked "
                                    "is set");
    }
}

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

/// Wakes a waiter (on its own executor): to try again, or, `handed`, because a hand-over named it
/// (with the fencing token, for a lock).
void wake(const std::shared_ptr<Waiter>& waiter, bool handed = false,
          std::uint64_t handed_fence = 0) {
    asio::post(waiter->executor, [waiter, handed, handed_fence] {
        waiter->notified = true;
        if (handed) {
            waiter->handed = true;
            waiter->handed_fence = handed_fence;
        }
        waiter->timer->cancel();
    });
}

PoolOptions connection_pool_options() {
    PoolOptions o;
    o.backoff.initial = std::chrono::milliseconds(50);
    o.backoff.max = std::chrono::seconds(2);
    return o;
}

/// A command bounded by `deadline` (the connection's own deadline: no timer of ours); the
/// caller's cancellation reaches the command. On one connection, or routed by a cluster client.
template <typename Target>
asio::awaitable<std::pair<error_code, Reply>> exec(Target& target, std::vector<std::string> command,
                                                   clock::time_point deadline) {
    auto [ec, reply] = co_await target.async_exec_until(std::move(command), deadline,
                                                        asio::as_tuple(asio::use_awaitable));
    co_return std::pair{ec, std::move(reply)};
}

constexpr std::string_view subscriber_prefix = "subscriber";

}  // namespace

std::string Script::sharded(const char* body) {
    std::string text = body;
    constexpr std::string_view publish = "'PUBLISH'";
    for (auto at = text.find(publish); at != std::string::npos; at = text.find(publish, at)) {
        text.replace(at, publish.size(), "'SPUBLISH'");
    }
    return text;
}

LeaseClient::LeaseClient(asio::any_io_executor executor, RedisLockServiceOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      time_(options_.time ? options_.time : TimeSource::steady()),
      connections_(
          executor_, [this](const std::string& role) { return connect(role); },
          connection_pool_options()) {
    if (!options_.cluster.seeds.empty()) {
        cluster_ = std::make_unique<ClusterPool>(
            executor_,
            [ex = executor_, config = options_.cluster](
                const int&) -> asio::awaitable<std::shared_ptr<ClusterClient>> {
                co_return co_await ClusterClient::async_connect(ex, config);
            },
            connection_pool_options());
    }
}

std::shared_ptr<spdlog::logger> LeaseClient::log() const {
    return options_.logger ? options_.logger : logger();
}

void LeaseClient::shutdown() {
    connections_.async_shutdown(asio::detached);
    if (cluster_) {
        cluster_->async_shutdown(asio::detached);
    }
}

asio::awaitable<std::shared_ptr<Connection>> LeaseClient::connect(const std::string& role) {
    ConnectionConfig config = options_.connection;
    if (on_cluster()) {  // "subscriber <host>:<port>"
        config = options_.cluster.node;
        const auto space = role.find(' ');
        const auto colon = role.rfind(':');
        config.host = role.substr(space + 1, colon - space - 1);
        config.port = static_cast<std::uint16_t>(std::stoi(role.substr(colon + 1)));
    }
    auto connection = co_await Connection::async_connect(executor_, std::move(config));
    if (role.rfind(subscriber_prefix, 0) == 0) {
        std::weak_ptr<LeaseClient> weak = weak_from_this();
        const Connection* on_this = connection.get();
        connection->set_push_handler([weak, on_this](Reply message) {
            if (auto self = weak.lock()) {
                self->on_message(message, on_this);
            }
        });
        // Its subscriptions die with it: the waiters learn it at once (not at their next
        // re-check) and subscribe again on the next connection, e.g. on a failover.
        const Connection* on = connection.get();
        connection->async_wait_closed([weak, on](error_code) {
            if (auto self = weak.lock()) {
                self->subscriber_closed(on);
            }
        });
    }
    co_return connection;
}

// ---- requests, each bounded by a deadline ---------------------------------------------------

clock::time_point LeaseClient::io_deadline(clock::time_point deadline) const {
    if (time_ == TimeSource::steady() || deadline == clock::time_point::max()) {
        return deadline;
    }
    return clock::now() + (deadline - time_->now());
}

/// The connection for `role` before `deadline` (see pooled_connection; on the steady clock).
asio::awaitable<std::pair<error_code, std::shared_ptr<Connection>>> LeaseClient::connection(
    const std::string& role, clock::time_point deadline) {
    co_return co_await pooled_connection(connections_, role, deadline);
}

asio::awaitable<std::pair<error_code, std::shared_ptr<ClusterClient>>> LeaseClient::cluster_client(
    clock::time_point deadline) {
    co_return co_await pooled_connection(*cluster_, 0, deadline);
}

asio::awaitable<std::string> LeaseClient::subscriber_role(const std::string& channel,
                                                          clock::time_point deadline) {
    if (!on_cluster()) {
        co_return std::string(subscriber_prefix);
    }
    auto [ec, cluster] = co_await cluster_client(deadline);
    if (ec) {
        co_return std::string();
    }
    const auto primary = cluster->primary_for(hash_slot(channel));
    if (!primary) {
        co_return std::string();
    }
    co_return fmt::format("{} {}:{}", subscriber_prefix, primary->host, primary->port);
}

asio::awaitable<std::pair<error_code, Reply>> LeaseClient::run(Script& script,
                                                               std::vector<std::string> keys,
                                                               std::vector<std::string> args,
                                                               clock::time_point until) {
    const auto deadline = io_deadline(until);  // below: the connections' steady clock
    // One server (its "commands" connection), or the cluster (routed by the keys' slot).
    std::shared_ptr<Connection> single;
    std::shared_ptr<ClusterClient> cluster;
    if (on_cluster()) {
        auto [get_ec, got] = co_await cluster_client(deadline);
        if (get_ec) {
            co_return std::pair{get_ec, Reply{}};
        }
        cluster = std::move(got);
    } else {
        auto [get_ec, got] = co_await connection("commands", deadline);
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
        std::lock_guard lock(scripts_mutex_);
        sha = script.sha;
    }
    if (sha.empty()) {
        // On a cluster this loads it on one primary; the others learn it from the EVAL below.
        auto [load_ec, loaded] = co_await send(command("SCRIPT", "LOAD", body));
        if (load_ec) {
            co_return std::pair{load_ec, std::move(loaded)};
        }
        sha = loaded.text();
        std::lock_guard lock(scripts_mutex_);
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
asio::awaitable<error_code> LeaseClient::replicas_acked(Connection& connection,
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
        log()->warn("keyedpool: {} of {} replicas acknowledged a lease write within {} ms",
                    acked.as_integer(), options_.min_replicas_acked, wait_ms);
        co_return ResultCode::not_replicated;
    }
    co_return error_code{};
}

void LeaseClient::log_late_grant(const std::string& resource, std::size_t permits,
                                 clock::duration lease, clock::duration late_by, bool again) const {
    const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(late_by);
    if (permits == 0) {
        log()->warn(
            "keyedpool: the lock on {} came {} ms after it was asked for, with less than half of "
            "its {} ms lease left; {}",
            resource, late.count(), lease_ms(lease), again ? "taking it again" : "giving it back");
    } else {
        log()->warn(
            "keyedpool: {} permit(s) of {} came {} ms after they were asked for, with less than "
            "half of their {} ms lease left; {}",
            permits, resource, late.count(), lease_ms(lease),
            again ? "taking them again" : "giving them back");
    }
}

long long LeaseClient::queue_place_ms() const {
    return std::max<long long>(1000, 3 * lease_ms(options_.recheck_interval));
}

void LeaseClient::give_back(const Script& script, std::vector<std::string> keys,
                            std::vector<std::string> args) {
    // A copy of the script (its SHA read under the lock): the service that owns it may be gone
    // before this background work ends; this client stays alive with it.
    Script own = [&] {
        std::lock_guard lock(scripts_mutex_);
        return script;
    }();
    // On a strand: the request's deadline timer and its command complete on one executor.
    asio::co_spawn(
        asio::make_strand(executor_),
        [self = shared_from_this(), script = std::move(own), keys = std::move(keys),
         args = std::move(args)]() mutable -> asio::awaitable<void> {
            const TimeSource& time = *self->time_;
            const auto give_up_at = time.now() + std::chrono::milliseconds(self->queue_place_ms());
            auto pause = time.make_timer(co_await asio::this_coro::executor);
            auto wait = std::chrono::milliseconds(20);
            for (;;) {
                auto [ec, reply] = co_await self->run(
                    script, keys, args, std::min(self->request_deadline(), give_up_at));
                if (!ec) {
                    co_return;
                }
                if (!is_transient(ec) || time.now() + wait >= give_up_at) {
                    self->log()->debug("keyedpool: giving back an abandoned acquisition failed: {}",
                                       ec.message());
                    co_return;
                }
                pause->expires_after(wait);
                co_await pause->async_wait(asio::as_tuple(asio::use_awaitable));
                wait = std::min(2 * wait, std::chrono::milliseconds(500));
            }
        },
        asio::detached);
}

// ---- waiting for a hand-over ----------------------------------------------------------------
//
// Invariant (under channels_mutex_; checked in debug builds): every entry of `channels_` is
// either waited on (waiters not empty, not idle) or idle (no waiters, listed once in
// `idle_channels_`), and at most `max_idle_channels` are idle. A waiter is registered before
// anything can observe it and removed exactly once.

LeaseClient::Acquisition::~Acquisition() {
    if (registered) {
        client.remove_waiter(channel, waiter_);
    }
    if (on_server && !acquired) {
        client.give_back(give_back_script, keys_of(key), {token, channel});
    }
}

const std::shared_ptr<Waiter>& LeaseClient::Acquisition::waiter() {
    if (!waiter_) {
        waiter_ = std::make_shared<Waiter>(executor, *client.time_, token);
    }
    return waiter_;
}

asio::awaitable<error_code> LeaseClient::wait_for_turn(Acquisition& acquisition,
                                                       clock::time_point attempt_sent,
                                                       bool for_hand_over,
                                                       clock::time_point until) {
    Waiter& waiter = *acquisition.waiter();
    if (for_hand_over) {
        if (!acquisition.registered) {
            register_waiter(acquisition.channel, acquisition.waiter());
            acquisition.registered = true;
        }
        // Every time, not only on registering: the subscription may have died since (its
        // connection failed, a failover; on a cluster the server dropped it when the slot moved).
        // A live one costs a cached-connection lookup.
        co_await subscribe(acquisition.channel, acquisition.waiter(), attempt_sent, until);
    }
    // A wake-up that came while the waiter was not sleeping (during its attempt, or while
    // subscribing): try again at once.
    if (!std::exchange(waiter.notified, false)) {
        waiter.timer->expires_at(until);
        co_await waiter.timer->async_wait(asio::as_tuple(asio::use_awaitable));
        waiter.notified = false;
    }
    const auto cancel = co_await asio::this_coro::cancellation_state;
    if (cancel.cancelled() != asio::cancellation_type::none) {
        co_return asio::error::operation_aborted;
    }
    co_return error_code{};
}

/// Registers `waiter` for hand-over messages on `channel`. Synchronous: no cancellation can land
/// between deciding to wait and being registered.
void LeaseClient::register_waiter(const std::string& channel,
                                  const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(channels_mutex_);
    Channel& entry = channels_[channel];
    if (entry.idle) {
        idle_channels_.erase(entry.idle_pos);
        entry.idle = false;
    }
    entry.waiters.push_back(waiter);
    check_channels();
}

/// Makes sure `channel` is subscribed on the current subscriber connection (waiting for that
/// connection at most until `deadline`). Sets `waiter->notified` when a hand-over already named it
/// meanwhile (or when the subscription may have missed that): the caller tries again at once.
/// When a SUBSCRIBE has to be sent first, its confirmation wakes every waiter of the channel to
/// try again.
asio::awaitable<void> LeaseClient::subscribe(const std::string& channel,
                                             std::shared_ptr<Waiter> waiter,
                                             clock::time_point attempt_sent,
                                             clock::time_point deadline) {
    deadline = io_deadline(deadline);  // below: the connections' steady clock
    const std::string role = co_await subscriber_role(channel, deadline);
    if (role.empty()) {
        co_return;  // no map for the channel's slot: the re-checks still find the lease free
    }
    auto [ec, subscriber] = co_await connection(role, deadline);
    if (ec) {
        co_return;  // no subscriber: the re-checks still find the lease free
    }
    std::lock_guard lock(channels_mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.idle) {
        co_return;  // not waited on any more
    }
    Channel& entry = it->second;
    if (entry.subscribed_on == subscriber.get()) {
        if (!entry.confirmed || entry.confirmed_at > attempt_sent) {
            // The subscription went live after the attempt (a hand-over in between could be
            // lost), or is not live yet (its confirmation wakes us).
            waiter->notified = entry.confirmed;
        } else if (std::find(entry.missed.begin(), entry.missed.end(), waiter->token) !=
                   entry.missed.end()) {
            waiter->notified = true;  // our turn came before we registered
        }
        co_return;
    }
    entry.subscribed_on = subscriber.get();
    entry.subscriber_role = role;
    entry.confirmed = false;
    // Initiated under the mutex, so SUBSCRIBE/UNSUBSCRIBE reach the server in decision order.
    std::weak_ptr<LeaseClient> weak = weak_from_this();
    const Connection* on = subscriber.get();
    subscriber->async_exec(command(on_cluster() ? "SSUBSCRIBE" : "SUBSCRIBE", channel),
                           [weak, channel, on](error_code sub_ec, Reply) {
                               if (auto self = weak.lock()) {
                                   self->subscribed(channel, on, !sub_ec);
                               }
                           });
}

void LeaseClient::subscribed(const std::string& channel, const Connection* on, bool ok) {
    std::lock_guard lock(channels_mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || it->second.subscribed_on != on) {
        return;
    }
    it->second.confirmed = ok;
    it->second.confirmed_at = time_->now();
    if (!ok) {
        // Each waiter subscribes again at its next turn; waking them now would make a refused
        // subscription a loop of attempts (they keep their re-check).
        it->second.subscribed_on = nullptr;
        return;
    }
    for (auto& waiter : it->second.waiters) {
        wake(waiter);
    }
}

/// The subscriber connection `on` is gone: its channels are no longer subscribed, and every
/// waiter on them tries again (subscribing on the next connection).
void LeaseClient::subscriber_closed(const Connection* on) {
    std::lock_guard lock(channels_mutex_);
    for (auto& [name, entry] : channels_) {
        if (entry.subscribed_on != on) {
            continue;
        }
        entry.subscribed_on = nullptr;
        entry.confirmed = false;
        for (auto& waiter : entry.waiters) {
            wake(waiter);
        }
    }
}

/// Unregisters a waiter registered by `register_waiter`; its channel turns idle with its last
/// waiter (and the oldest idle channel beyond the cap is unsubscribed).
void LeaseClient::remove_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(channels_mutex_);
    auto it = channels_.find(channel);
    assert(it != channels_.end() && !it->second.idle);
    if (it == channels_.end() || it->second.idle) {
        return;
    }
    auto& waiters = it->second.waiters;
    waiters.erase(std::find(waiters.begin(), waiters.end(), waiter));
    if (waiters.empty()) {
        it->second.idle = true;
        it->second.idle_pos = idle_channels_.insert(idle_channels_.end(), channel);
        if (idle_channels_.size() > max_idle_channels) {
            drop_idle_channel(idle_channels_.front());
        }
    }
    check_channels();
}

/// Unsubscribes and forgets an idle channel. Under channels_mutex_. `name` is a copy: the caller's
/// string may be the `idle_channels_` element this erases.
void LeaseClient::drop_idle_channel(const std::string name) {
    auto it = channels_.find(name);
    assert(it != channels_.end() && it->second.idle && it->second.waiters.empty());
    idle_channels_.erase(it->second.idle_pos);
    if (auto subscriber =
            it->second.subscribed_on ? connections_.try_get(it->second.subscriber_role) : nullptr;
        subscriber && subscriber.get() == it->second.subscribed_on) {
        subscriber->async_exec(command(on_cluster() ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", name),
                               [](error_code, Reply) {});
    }
    channels_.erase(it);
}

/// The channel invariant (debug builds). Under channels_mutex_.
void LeaseClient::check_channels() const {
#ifndef NDEBUG
    std::size_t idle = 0;
    for (const auto& [name, entry] : channels_) {
        assert(entry.idle == entry.waiters.empty());
        if (entry.idle) {
            assert(*entry.idle_pos == name);
            ++idle;
        }
    }
    assert(idle == idle_channels_.size());
    assert(idle_channels_.size() <= max_idle_channels);
#endif
}

// On the subscriber connection's strand.
void LeaseClient::on_message(const Reply& message, const Connection* on) {
    if (message.elements().size() < 3) {
        return;
    }
    if (message.elements()[0].text() == "sunsubscribe") {
        // The server dropped a sharded subscription (the channel's slot moved to another
        // shard): its waiters try again at once and subscribe where the slot is now.
        std::lock_guard lock(channels_mutex_);
        if (auto it = channels_.find(message.elements()[1].text());
            it != channels_.end() && it->second.subscribed_on == on) {
            it->second.subscribed_on = nullptr;
            it->second.confirmed = false;
            for (auto& waiter : it->second.waiters) {
                wake(waiter);
            }
        }
        return;
    }
    // ["message" (cluster: "smessage"), channel, "<token>[ <fencing token>]"]: a lease was
    // handed to that token.
    const std::string& payload = message.elements()[2].text();
    const auto space = payload.find(' ');
    const std::string next = payload.substr(0, space);
    std::uint64_t fence = 0;
    if (space != std::string::npos) {
        const char* first = payload.data() + space + 1;
        std::from_chars(first, payload.data() + payload.size(), fence);
    }
    std::lock_guard lock(channels_mutex_);
    if (auto it = channels_.find(message.elements()[1].text()); it != channels_.end()) {
        bool found = false;
        for (auto& waiter : it->second.waiters) {
            if (waiter->token == next) {
                wake(waiter, true, fence);
                found = true;
            }
        }
        if (!found) {
            auto& missed = it->second.missed;
            missed.push_back(next);
            if (missed.size() > max_missed) {
                missed.pop_front();
            }
        }
    }
}

}  // namespace keyedpool::redis::detail
