// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../lock_common.hpp"
#include "lock_scripts.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

long long lease_ms(clock::duration lease) {
    return std::chrono::ceil<std::chrono::milliseconds>(lease).count();
}

/// A waiter's wake-up: a timer on the waiter's own executor, cancelled to wake it early.
struct Waiter {
    Waiter(const asio::any_io_executor& ex, std::string t)
        : executor(ex), timer(ex), token(std::move(t)) {}
    asio::any_io_executor executor;
    asio::steady_timer timer;
    bool notified = false;           // on `executor`: a wake-up arrived while not sleeping
    std::uint64_t handed_fence = 0;  // on `executor`: the lock was handed over with this token
    const std::string token;         // a release message naming it hands it the lock
};

/// Wakes a waiter (on its own executor): to try again, or, with a fencing token, because a release
/// handed it the lock.
void wake(const std::shared_ptr<Waiter>& waiter, std::uint64_t handed_fence = 0) {
    asio::post(waiter->executor, [waiter, handed_fence] {
        waiter->notified = true;
        if (handed_fence != 0) {
            waiter->handed_fence = handed_fence;
        }
        waiter->timer.cancel();
    });
}

/// The five keys of a resource's lock and queue, in the order the scripts take them.
std::vector<std::string> lock_keys(const std::string& key) {
    return {key, key + ":fence", key + ":queue", key + ":queued", key + ":leases"};
}

}  // namespace

struct RedisLockService::Impl : detail::LockBackend, std::enable_shared_from_this<Impl> {
    using Pool = KeyedClientPool<std::string, Connection>;

    struct Script {
        const char* body;
        bool hands_out_fences;  // its last argument is the primary's config epoch (see run)
        bool replicated;        // waits for min_replicas_acked replicas (see run)
        std::string sha;        // guarded by scripts_mutex; empty until loaded
    };

    /// A release channel this process listens to. It stays subscribed for a while after its last
    /// waiter left (up to `max_idle_channels` idle ones), so back-to-back contention on a resource
    /// does not pay a SUBSCRIBE, and the retry after it, per acquisition.
    struct Channel {
        std::list<std::shared_ptr<Waiter>> waiters;
        const Connection* subscribed_on = nullptr;
        clock::time_point confirmed_at{};  // when SUBSCRIBE was confirmed on `subscribed_on`
        bool confirmed = false;
        std::string missed;  // last token named by a release while no waiter here had it
        bool idle = false;   // in `idle_channels`
        std::list<std::string>::iterator idle_pos;
    };
    static constexpr std::size_t max_idle_channels = 64;

    Impl(asio::any_io_executor ex, RedisLockServiceOptions opts)
        : executor(std::move(ex)),
          options(std::move(opts)),
          connections(
              executor, [this](const std::string& role) { return connect(role); }, pool_options()),
          local_queue(executor) {}

    static PoolOptions pool_options() {
        PoolOptions o;
        o.backoff.initial = std::chrono::milliseconds(50);
        o.backoff.max = std::chrono::seconds(2);
        return o;
    }

    asio::awaitable<std::shared_ptr<Connection>> connect(const std::string& role) {
        auto connection = co_await Connection::async_connect(executor, options.connection);
        if (role == "subscriber") {
            std::weak_ptr<Impl> weak = weak_from_this();
            connection->set_push_handler([weak](Reply message) {
                if (auto self = weak.lock()) {
                    self->on_message(message);
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

    std::string lock_key(const std::string& resource) const {
        return options.key_prefix + "{" + resource + "}";
    }

    // ---- requests, each bounded by a deadline ---------------------------------------------

    /// The connection for `role`: the cached one at once, else waits for its build until
    /// `deadline` (`ResultCode::timeout`; `operation_aborted` when the caller was cancelled).
    /// On the calling coroutine's executor, which is a strand: the build and the timer complete
    /// there, so the group's cancellation of the loser never races the winner.
    asio::awaitable<std::pair<error_code, std::shared_ptr<Connection>>> connection(
        const std::string& role, clock::time_point deadline) {
        if (auto cached = connections.try_get(role)) {
            co_return std::pair{error_code{}, std::move(cached)};
        }
        asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
        auto [order, ec, built, timer_ec] =
            co_await asio::experimental::make_parallel_group(
                connections.async_get(role, asio::deferred), timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        (void)timer_ec;
        const auto cancellation = co_await asio::this_coro::cancellation_state;
        if (cancellation.cancelled() != asio::cancellation_type::none) {
            co_return std::pair{error_code(asio::error::operation_aborted), nullptr};
        }
        if (order[0] == 1) {
            co_return std::pair{error_code(ResultCode::timeout), nullptr};
        }
        co_return std::pair{ec, std::move(built)};
    }

    /// A command bounded by `deadline` (the connection's own deadline: no timer of ours); the
    /// caller's cancellation reaches the command.
    static asio::awaitable<std::pair<error_code, Reply>> exec(Connection& connection,
                                                              std::vector<std::string> command,
                                                              clock::time_point deadline) {
        auto [ec, reply] = co_await connection.async_exec_until(
            std::move(command), deadline, asio::as_tuple(asio::use_awaitable));
        co_return std::pair{ec, std::move(reply)};
    }

    /// The deadline of a request made outside a wait (release, renewal, clean-up).
    clock::time_point request_deadline() const { return clock::now() + options.request_timeout; }

    /// Runs a script before `deadline`: EVALSHA, loading it first, and EVAL when the server lost
    /// it (NOSCRIPT).
    asio::awaitable<std::pair<error_code, Reply>> run(Script& script, std::vector<std::string> keys,
                                                      std::vector<std::string> args,
                                                      clock::time_point deadline) {
        auto [get_ec, connection] = co_await this->connection("commands", deadline);
        if (get_ec) {
            co_return std::pair{get_ec, Reply{}};
        }
        std::string sha;
        {
            std::lock_guard lock(scripts_mutex);
            sha = script.sha;
        }
        if (sha.empty()) {
            auto [load_ec, loaded] =
                co_await exec(*connection, command("SCRIPT", "LOAD", script.body), deadline);
            if (load_ec) {
                co_return std::pair{load_ec, std::move(loaded)};
            }
            sha = loaded.text();
            std::lock_guard lock(scripts_mutex);
            script.sha = sha;
        }
        if (script.hands_out_fences) {
            // Fencing tokens never go backwards across a failover: they start above
            // epoch << 32 on a primary Sentinel promoted at that epoch (docs/locks.md).
            args.push_back(std::to_string(connection->config_epoch()));
        }
        auto build = [&](std::string first, std::string what) {
            std::vector<std::string> cmd{std::move(first), std::move(what),
                                         std::to_string(keys.size())};
            cmd.insert(cmd.end(), keys.begin(), keys.end());
            cmd.insert(cmd.end(), args.begin(), args.end());
            return cmd;
        };
        requests_sent.fetch_add(1, std::memory_order_relaxed);
        auto [ec, reply] = co_await exec(*connection, build("EVALSHA", sha), deadline);
        if (ec && reply.server_error() == ServerError::noscript) {  // e.g. the server restarted
            std::tie(ec, reply) = co_await exec(*connection, build("EVAL", script.body), deadline);
        }
        if (!ec && script.replicated && options.min_replicas_acked > 0) {
            ec = co_await replicas_acked(*connection, deadline);
        }
        co_return std::pair{ec, std::move(reply)};
    }

    /// `WAIT`s, on the connection that just wrote, for `min_replicas_acked` replicas to have
    /// what it wrote: success, or `ResultCode::not_replicated` (the count is logged).
    asio::awaitable<error_code> replicas_acked(Connection& connection, clock::time_point deadline) {
        const auto wait_ms = std::max<long long>(
            1, std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::min(options.replicas_ack_timeout, deadline - clock::now()))
                   .count());
        auto [ec, acked] = co_await exec(
            connection, command("WAIT", options.min_replicas_acked, wait_ms), deadline);
        if (ec) {
            co_return ec == ResultCode::timeout ? error_code(ResultCode::not_replicated) : ec;
        }
        if (acked.as_integer() < options.min_replicas_acked) {
            log()->warn("keyedpool: {} of {} replicas acknowledged a lock write within {} ms",
                        acked.as_integer(), options.min_replicas_acked, wait_ms);
            co_return ResultCode::not_replicated;
        }
        co_return error_code{};
    }

    struct Attempt {
        error_code ec;
        bool acquired = false;
        std::uint64_t fence = 0;
        long long remaining_ms = 0;  // of the current holder's lease
    };

    /// How long a waiter keeps its place in the Redis queue without trying again: a few re-check
    /// intervals (a live waiter tries at least once per interval).
    long long queue_place_ms() const {
        return std::max<long long>(1000, 3 * lease_ms(options.recheck_interval));
    }

    asio::awaitable<Attempt> try_acquire(const std::string& resource, const std::string& token,
                                         clock::duration lease, bool queue,
                                         clock::time_point deadline) {
        const auto key = lock_key(resource);
        std::vector<std::string> keys = lock_keys(key);
        std::vector<std::string> args{token, std::to_string(lease_ms(lease)),
                                      std::to_string(queue ? queue_place_ms() : 0)};
        auto [ec, reply] = co_await run(acquire, std::move(keys), std::move(args), deadline);
        if (ec) {
            co_return Attempt{ec, false, 0, 0};
        }
        if (reply.type() != ReplyType::array || reply.elements().size() != 2) {
            co_return Attempt{ResultCode::protocol_error, false, 0, 0};
        }
        const auto flag = reply.elements()[0].as_integer();
        const auto value = reply.elements()[1].as_integer();
        if (flag == 1) {
            co_return Attempt{error_code{}, true, static_cast<std::uint64_t>(value), 0};
        }
        co_return Attempt{error_code{}, false, 0, value};
    }

    asio::awaitable<error_code> renew(detail::LockState& state) override {
        std::vector<std::string> keys{lock_key(state.resource)};
        std::vector<std::string> args{state.token, std::to_string(lease_ms(state.lease))};
        // A renewal answered after the lease ended is of no use: the lock is lost by then.
        auto [ec, reply] = co_await run(renew_script_, std::move(keys), std::move(args),
                                        std::min(request_deadline(), state.valid_until));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    asio::awaitable<error_code> release(detail::LockState& state) override {
        const auto key = lock_key(state.resource);
        std::vector<std::string> keys = lock_keys(key);
        std::vector<std::string> args{state.token, key + ":released"};
        auto [ec, reply] =
            co_await run(release_script_, std::move(keys), std::move(args), request_deadline());
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    /// Gives back whatever the server may hold for an acquisition that ends without a lock: its
    /// place in the queue, and the lock itself when a grant came too late or its reply was never
    /// read. In the background, best effort: if it fails, the place and the lease expire by
    /// themselves.
    void abandon(const std::string& resource, const std::string& token) {
        const auto key = lock_key(resource);
        // On a strand: the request's deadline timer and its command complete on one executor.
        // Transient failures (the connection died, the primary is failing over) are retried for
        // as long as the place would last anyway: a place left behind blocks the queue's head.
        asio::co_spawn(
            asio::make_strand(executor),
            [self = shared_from_this(), keys = lock_keys(key),
             args = std::vector<std::string>{token, key + ":released"}]() mutable
            -> asio::awaitable<void> {
                const auto give_up_at =
                    clock::now() + std::chrono::milliseconds(self->queue_place_ms());
                asio::steady_timer pause(co_await asio::this_coro::executor);
                auto wait = std::chrono::milliseconds(20);
                for (;;) {
                    auto [ec, reply] =
                        co_await self->run(self->release_script_, keys, args,
                                           std::min(self->request_deadline(), give_up_at));
                    if (!ec) {
                        co_return;
                    }
                    if (!is_transient(ec) || clock::now() + wait >= give_up_at) {
                        self->log()->debug(
                            "keyedpool: giving back an abandoned acquisition failed: {}",
                            ec.message());
                        co_return;
                    }
                    pause.expires_after(wait);
                    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                    wait = std::min(2 * wait, std::chrono::milliseconds(500));
                }
            },
            asio::detached);
    }

    std::shared_ptr<spdlog::logger> log() const {
        return options.logger ? options.logger : logger();
    }

    // ---- release channels and their waiters -------------------------------------------------
    //
    // Invariant (under channels_mutex; checked in debug builds): every entry of `channels` is
    // either waited on (waiters not empty, not idle) or idle (no waiters, listed once in
    // `idle_channels`), and at most `max_idle_channels` are idle. A waiter is registered before
    // anything can observe it and removed exactly once.

    /// Registers `waiter` for release messages on `channel`. Synchronous: no cancellation can land
    /// between deciding to wait and being registered.
    void register_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter) {
        std::lock_guard lock(channels_mutex);
        Channel& entry = channels[channel];
        if (entry.idle) {
            idle_channels.erase(entry.idle_pos);
            entry.idle = false;
        }
        entry.waiters.push_back(waiter);
        check_channels();
    }

    /// Makes sure `channel` is subscribed on the current subscriber connection (waiting for that
    /// connection at most until `deadline`). Sets `waiter->notified` when a release already named
    /// it meanwhile (or when the subscription may have missed that): the caller tries again at
    /// once. When a SUBSCRIBE has to be sent first, its confirmation wakes every waiter of the
    /// channel to try again.
    asio::awaitable<void> subscribe(const std::string& channel, std::shared_ptr<Waiter> waiter,
                                    clock::time_point attempt_sent, clock::time_point deadline) {
        auto [ec, subscriber] = co_await connection("subscriber", deadline);
        if (ec) {
            co_return;  // no subscriber: the re-checks still find the lock free
        }
        std::lock_guard lock(channels_mutex);
        auto it = channels.find(channel);
        if (it == channels.end() || it->second.idle) {
            co_return;  // not waited on any more
        }
        Channel& entry = it->second;
        if (entry.subscribed_on == subscriber.get()) {
            if (!entry.confirmed || entry.confirmed_at > attempt_sent) {
                // The subscription went live after the attempt (a release in between could be
                // lost), or is not live yet (its confirmation wakes us).
                waiter->notified = entry.confirmed;
            } else if (entry.missed == waiter->token) {
                waiter->notified = true;  // our turn came before we registered
            }
            co_return;
        }
        entry.subscribed_on = subscriber.get();
        entry.confirmed = false;
        // Initiated under the mutex, so SUBSCRIBE/UNSUBSCRIBE reach the server in decision order.
        std::weak_ptr<Impl> weak = weak_from_this();
        const Connection* on = subscriber.get();
        subscriber->async_exec(command("SUBSCRIBE", channel),
                               [weak, channel, on](error_code sub_ec, Reply) {
                                   if (auto self = weak.lock()) {
                                       self->subscribed(channel, on, !sub_ec);
                                   }
                               });
    }

    void subscribed(const std::string& channel, const Connection* on, bool ok) {
        std::lock_guard lock(channels_mutex);
        auto it = channels.find(channel);
        if (it == channels.end() || it->second.subscribed_on != on) {
            return;
        }
        it->second.confirmed = ok;
        it->second.confirmed_at = clock::now();
        if (!ok) {
            it->second.subscribed_on = nullptr;  // the next waiter subscribes again
        }
        for (auto& waiter : it->second.waiters) {
            wake(waiter);
        }
    }

    /// The subscriber connection `on` is gone: its channels are no longer subscribed, and every
    /// waiter on them tries again (subscribing on the next connection).
    void subscriber_closed(const Connection* on) {
        std::lock_guard lock(channels_mutex);
        for (auto& [name, entry] : channels) {
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
    void remove_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter) {
        std::lock_guard lock(channels_mutex);
        auto it = channels.find(channel);
        assert(it != channels.end() && !it->second.idle);
        if (it == channels.end() || it->second.idle) {
            return;
        }
        auto& waiters = it->second.waiters;
        waiters.erase(std::find(waiters.begin(), waiters.end(), waiter));
        if (waiters.empty()) {
            it->second.idle = true;
            it->second.idle_pos = idle_channels.insert(idle_channels.end(), channel);
            if (idle_channels.size() > max_idle_channels) {
                drop_idle_channel(idle_channels.front());
            }
        }
        check_channels();
    }

    /// Unsubscribes and forgets an idle channel. Under channels_mutex. `name` is a copy: the
    /// caller's string may be the `idle_channels` element this erases.
    void drop_idle_channel(const std::string name) {
        auto it = channels.find(name);
        assert(it != channels.end() && it->second.idle && it->second.waiters.empty());
        idle_channels.erase(it->second.idle_pos);
        if (auto subscriber = connections.try_get("subscriber");
            subscriber && subscriber.get() == it->second.subscribed_on) {
            subscriber->async_exec(command("UNSUBSCRIBE", name), [](error_code, Reply) {});
        }
        channels.erase(it);
    }

    /// The channel invariant (debug builds). Under channels_mutex.
    void check_channels() const {
#ifndef NDEBUG
        std::size_t idle = 0;
        for (const auto& [name, entry] : channels) {
            assert(entry.idle == entry.waiters.empty());
            if (entry.idle) {
                assert(*entry.idle_pos == name);
                ++idle;
            }
        }
        assert(idle == idle_channels.size());
        assert(idle_channels.size() <= max_idle_channels);
#endif
    }

    void on_message(const Reply& message) {  // on the subscriber connection's strand
        // ["message", channel, "<token> <fencing token>"]: the lock was handed to that token.
        if (message.elements().size() < 3) {
            return;
        }
        const std::string& payload = message.elements()[2].text();
        const auto space = payload.find(' ');
        const std::string next = payload.substr(0, space);
        std::uint64_t fence = 0;
        if (space != std::string::npos) {
            const char* first = payload.data() + space + 1;
            std::from_chars(first, payload.data() + payload.size(), fence);
        }
        std::lock_guard lock(channels_mutex);
        if (auto it = channels.find(message.elements()[1].text()); it != channels.end()) {
            bool found = false;
            for (auto& waiter : it->second.waiters) {
                if (waiter->token == next) {
                    wake(waiter, fence);
                    found = true;
                }
            }
            if (!found) {
                it->second.missed = next;
            }
        }
    }

    // ---- the lock operation -------------------------------------------------------------------

    using Acquired = detail::Acquired;

    /// What the service holds for one acquisition, given back when it ends without a lock (on
    /// every path out, including an exception from a cancelled coroutine).
    struct Acquisition {
        Impl& impl;
        const std::string& resource;
        const std::string& channel;
        std::shared_ptr<Waiter> waiter;
        bool registered = false;  // for release messages (register_waiter)
        bool on_server = false;   // the server may hold the lock or a queue place for the token
        bool acquired = false;
        ~Acquisition() {
            if (registered) {
                impl.remove_waiter(channel, waiter);
            }
            if (on_server && !acquired) {
                impl.abandon(resource, waiter->token);
            }
        }
    };

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only) {
        if (auto ec = detail::check_lock_request(
                resource, options, self->options.max_resource_bytes, self->options.logger)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const auto start = clock::now();
        const auto deadline = start + options.wait;
        const bool waits = !try_only && options.wait > clock::duration::zero();
        // Every request is bounded by the remaining wait; one that does not wait by
        // request_timeout. Running out of it is the wait ending (lock_timeout) when waiting, and
        // the server being too slow (timeout) when not.
        const auto requests_until = waits ? deadline : start + self->options.request_timeout;
        const error_code too_slow = waits ? ResultCode::lock_timeout : ResultCode::timeout;
        const error_code busy = try_only ? ResultCode::lock_busy : ResultCode::lock_timeout;
        auto executor = co_await asio::this_coro::executor;

        // 1. Queue locally: one contender per resource and process.
        auto queued_locally = co_await detail::queue_locally(
            self->local_queue, resource, options, try_only, deadline, *TimeSource::steady());
        if (queued_locally.first) {
            co_return Acquired{queued_locally.first, LockGuard{}};
        }
        auto hold = std::move(queued_locally.second);  // not a structured binding: captured below

        // 2. Contend in Redis: try, subscribe, try again, sleep until a release message (or the
        //    holder's lease, our deadline, or the re-check interval).
        const std::string channel = self->lock_key(resource) + ":released";
        Acquisition acquisition{*self, resource, channel,
                                std::make_shared<Waiter>(executor, detail::random_token())};
        Waiter& waiter = *acquisition.waiter;
        // Success, when the lock (held since `held_from` at the latest) is valid for at least half
        // its lease (so the watchdog's first renewal, at a third, comes in time). Otherwise null:
        // the caller takes it again with a fresh lease, or gives it back when the wait is over.
        auto grant = [&](std::uint64_t fence,
                         clock::time_point held_from) -> std::optional<Acquired> {
            const auto now = clock::now();
            if (detail::LockState::validity_from(options.lease, held_from) - now >=
                options.lease / 2) {
                acquisition.acquired = true;
                return Acquired{error_code{},
                                detail::make_held_lock(self->executor, self, resource, waiter.token,
                                                       fence, options, std::move(hold), held_from,
                                                       TimeSource::steady(), self->options.logger)};
            }
            self->log()->warn(
                "keyedpool: the lock on {} came {} ms after it was asked for, with less than "
                "half of its {} ms lease left; {}",
                resource,
                std::chrono::duration_cast<std::chrono::milliseconds>(now - held_from).count(),
                lease_ms(options.lease),
                waits && now < deadline ? "taking it again" : "giving it back");
            return std::nullopt;
        };
        clock::time_point last_sent{};
        for (;;) {
            if (waiter.handed_fence != 0) {
                // A release handed us the lock. It ran after our last attempt reached the server
                // (that attempt would have found the lock ours), so the lease started after
                // `last_sent`.
                if (auto granted = grant(std::exchange(waiter.handed_fence, 0), last_sent)) {
                    co_return std::move(*granted);
                }
                if (!waits || clock::now() >= deadline) {
                    co_return Acquired{too_slow, LockGuard{}};
                }
            }
            const auto sent_at = clock::now();
            last_sent = sent_at;
            acquisition.on_server = true;
            Attempt attempt = co_await self->try_acquire(resource, waiter.token, options.lease,
                                                         waits, requests_until);
            if (attempt.ec) {
                co_return Acquired{attempt.ec == ResultCode::timeout ? too_slow : attempt.ec,
                                   LockGuard{}};
            }
            const auto now = clock::now();
            if (attempt.acquired) {
                if (auto granted = grant(attempt.fence, sent_at)) {
                    co_return std::move(*granted);
                }
                if (!waits || now >= deadline) {
                    co_return Acquired{too_slow, LockGuard{}};
                }
                continue;
            }
            acquisition.on_server = waits;  // queued only when waiting
            if (!waits || now >= deadline) {
                co_return Acquired{busy, LockGuard{}};
            }
            if (!acquisition.registered) {
                self->register_waiter(channel, acquisition.waiter);
                acquisition.registered = true;
                co_await self->subscribe(channel, acquisition.waiter, sent_at, deadline);
            }
            if (waiter.notified) {
                waiter.notified = false;
                continue;
            }
            auto sleep =
                std::min<clock::duration>(deadline - clock::now(), self->options.recheck_interval);
            if (attempt.remaining_ms >= 0) {  // PTTL: 0 is "less than 1 ms left", not "none"
                sleep = std::min<clock::duration>(
                    sleep, std::chrono::milliseconds(std::max(attempt.remaining_ms, 1LL)));
            }
            waiter.timer.expires_after(sleep);
            co_await waiter.timer.async_wait(asio::as_tuple(asio::use_awaitable));
            waiter.notified = false;
            const auto cancel = co_await asio::this_coro::cancellation_state;
            if (cancel.cancelled() != asio::cancellation_type::none) {
                co_return Acquired{asio::error::operation_aborted, LockGuard{}};
            }
        }
    }

    asio::any_io_executor executor;
    RedisLockServiceOptions options;
    Pool connections;  // "commands" and "subscriber"
    KeyedMutex<std::string> local_queue;
    std::mutex scripts_mutex;
    Script acquire{lock_scripts::acquire, true, true, {}};
    Script renew_script_{lock_scripts::renew, false, true, {}};
    Script release_script_{lock_scripts::release, true, false, {}};  // also gives up acquisitions
    std::mutex channels_mutex;
    std::unordered_map<std::string, Channel> channels;
    std::list<std::string> idle_channels;  // subscribed, no waiter; oldest first
    std::atomic<std::uint64_t> requests_sent{0};
};

void validate(const RedisLockServiceOptions& options) {
    validate(options.connection);
    if (options.key_prefix.empty() || options.key_prefix.find_first_of("{}") != std::string::npos) {
        throw std::invalid_argument(
            "RedisLockServiceOptions.key_prefix must be non-empty and contain no '{' or '}'");
    }
    if (options.recheck_interval <= clock::duration::zero()) {
        throw std::invalid_argument("RedisLockServiceOptions.recheck_interval must be > 0");
    }
    if (options.request_timeout <= clock::duration::zero()) {
        throw std::invalid_argument("RedisLockServiceOptions.request_timeout must be > 0");
    }
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument("RedisLockServiceOptions.max_resource_bytes must be > 0");
    }
    if (options.min_replicas_acked < 0) {
        throw std::invalid_argument("RedisLockServiceOptions.min_replicas_acked must be >= 0");
    }
    if (options.min_replicas_acked > 0 &&
        options.replicas_ack_timeout < std::chrono::milliseconds(1)) {
        throw std::invalid_argument(
            "RedisLockServiceOptions.replicas_ack_timeout must be >= 1 ms when min_replicas_acked "
            "is set");
    }
}

RedisLockService::RedisLockService(asio::any_io_executor executor,
                                   RedisLockServiceOptions options) {
    validate(options);
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

RedisLockService::~RedisLockService() {
    impl_->connections.async_shutdown(asio::detached);
}

std::uint64_t RedisLockService::lock_requests_sent() const noexcept {
    return impl_->requests_sent.load(std::memory_order_relaxed);
}

void RedisLockService::lock_erased(std::string resource, LockOptions options, bool try_only,
                                   LockHandler handler) {
    detail::spawn_lock_operation(impl_->executor,
                                 Impl::lock(impl_, std::move(resource), options, try_only),
                                 std::move(handler));
}

}  // namespace keyedpool::redis
