// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/lock_service.hpp>

#include "../lock_common.hpp"

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

#include <list>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

namespace {

// The waiting queue: KEYS[3] is a list of waiting tokens in arrival order, KEYS[4] a sorted set of
// the same tokens scored by the server time (ms) until which each keeps its place. A waiter renews
// its place each time it tries; one that stops trying (its process died) is dropped once its place
// expires. The lock goes only to a caller when the queue is empty or the caller heads it, so a
// release hands over to the longest waiter and the releaser cannot barge back in. The common
// uncontended case (no queue, lock free) is tried first with the fewest server calls.

// KEYS[1] lock, KEYS[2] fence, KEYS[3] queue, KEYS[4] queue deadlines.
// ARGV[1] token, ARGV[2] lease in ms, ARGV[3] how long to keep a place in the queue in ms (0: a
// try-lock, which never queues). Returns {1, fencing token} when acquired, else {0, remaining lease
// of the holder in ms (negative when none)}.
constexpr const char* acquire_script = R"lua(
if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('LREM', KEYS[3], 1, gone)
  redis.call('ZREM', KEYS[4], gone)
end
local head = redis.call('LINDEX', KEYS[3], 0)
if redis.call('EXISTS', KEYS[1]) == 0 and ((not head) or head == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if head then
    redis.call('LPOP', KEYS[3])
    redis.call('ZREM', KEYS[4], ARGV[1])
  end
  return {1, redis.call('INCR', KEYS[2])}
end
local keep = tonumber(ARGV[3])
if keep > 0 and redis.call('ZADD', KEYS[4], now + keep, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[3], ARGV[1])
end
return {0, redis.call('PTTL', KEYS[1])}
)lua";

// KEYS[1] lock, KEYS[2] queue; ARGV[1] token, ARGV[2] release channel. Returns 1 when released
// (and tells the head of the queue, by its token), 0 when not the owner.
constexpr const char* release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local head = redis.call('LINDEX', KEYS[2], 0)
  if head then
    redis.call('PUBLISH', ARGV[2], head)
  end
  return 1
end
return 0
)lua";

// A waiter giving up (timeout, cancellation). KEYS[1] lock, KEYS[2] queue, KEYS[3] queue deadlines;
// ARGV[1] token, ARGV[2] release channel. Leaves the queue; if it was in the way of a free lock,
// tells the new head. Returns 1 when it was queued.
constexpr const char* leave_script = R"lua(
local removed = redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if removed == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  local head = redis.call('LINDEX', KEYS[2], 0)
  if head then
    redis.call('PUBLISH', ARGV[2], head)
  end
end
return removed
)lua";

// KEYS[1] lock key; ARGV[1] token, ARGV[2] lease in ms. 1 when extended, 0 when not the owner.
constexpr const char* renew_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

long long lease_ms(clock::duration lease) {
    return std::chrono::ceil<std::chrono::milliseconds>(lease).count();
}

/// A waiter's wake-up: a timer on the waiter's own executor, cancelled to wake it early.
struct Waiter {
    Waiter(const asio::any_io_executor& ex, std::string t)
        : executor(ex), timer(ex), token(std::move(t)) {}
    asio::any_io_executor executor;
    asio::steady_timer timer;
    bool notified = false;    // on `executor`: a wake-up arrived while not sleeping
    const std::string token;  // a release message naming it is its turn
};

void wake(const std::shared_ptr<Waiter>& waiter) {
    asio::post(waiter->executor, [waiter] {
        waiter->notified = true;
        waiter->timer.cancel();
    });
}

}  // namespace

struct RedisLockService::Impl : detail::LockBackend, std::enable_shared_from_this<Impl> {
    using Pool = KeyedClientPool<std::string, Connection>;

    struct Script {
        const char* body;
        std::string sha;  // guarded by scripts_mutex; empty until loaded
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
        }
        co_return connection;
    }

    std::string lock_key(const std::string& resource) const {
        return options.key_prefix + "{" + resource + "}";
    }

    // ---- scripts ------------------------------------------------------------------------------

    /// Runs a script: EVALSHA, loading it first, and EVAL when the server lost it (NOSCRIPT).
    asio::awaitable<std::pair<error_code, Reply>> run(Script& script, std::vector<std::string> keys,
                                                      std::vector<std::string> args) {
        auto [get_ec, connection] =
            co_await connections.async_get("commands", asio::as_tuple(asio::use_awaitable));
        if (get_ec) {
            co_return std::pair{get_ec, Reply{}};
        }
        std::string sha;
        {
            std::lock_guard lock(scripts_mutex);
            sha = script.sha;
        }
        if (sha.empty()) {
            auto [load_ec, loaded] = co_await connection->async_exec(
                command("SCRIPT", "LOAD", script.body), asio::as_tuple(asio::use_awaitable));
            if (load_ec) {
                co_return std::pair{load_ec, std::move(loaded)};
            }
            sha = loaded.text();
            std::lock_guard lock(scripts_mutex);
            script.sha = sha;
        }
        auto build = [&](std::string first, std::string what) {
            std::vector<std::string> cmd{std::move(first), std::move(what),
                                         std::to_string(keys.size())};
            cmd.insert(cmd.end(), keys.begin(), keys.end());
            cmd.insert(cmd.end(), args.begin(), args.end());
            return cmd;
        };
        requests_sent.fetch_add(1, std::memory_order_relaxed);
        auto [ec, reply] = co_await connection->async_exec(build("EVALSHA", sha),
                                                           asio::as_tuple(asio::use_awaitable));
        if (ec && reply.server_error() == ServerError::noscript) {  // e.g. the server restarted
            std::tie(ec, reply) = co_await connection->async_exec(
                build("EVAL", script.body), asio::as_tuple(asio::use_awaitable));
        }
        co_return std::pair{ec, std::move(reply)};
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
                                         clock::duration lease, bool queue) {
        const auto key = lock_key(resource);
        std::vector<std::string> keys{key, key + ":fence", key + ":queue", key + ":queued"};
        std::vector<std::string> args{token, std::to_string(lease_ms(lease)),
                                      std::to_string(queue ? queue_place_ms() : 0)};
        auto [ec, reply] = co_await run(acquire, std::move(keys), std::move(args));
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
        auto [ec, reply] = co_await run(renew_script_, std::move(keys), std::move(args));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    asio::awaitable<error_code> release(detail::LockState& state) override {
        const auto key = lock_key(state.resource);
        std::vector<std::string> keys{key, key + ":queue"};
        std::vector<std::string> args{state.token, key + ":released"};
        auto [ec, reply] = co_await run(release_script_, std::move(keys), std::move(args));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    /// Takes a waiter that gave up out of the Redis queue (in the background, best effort: if it
    /// fails, the place expires by itself).
    void leave_queue(const std::string& resource, const std::string& token) {
        const auto key = lock_key(resource);
        asio::co_spawn(
            executor,
            [self = shared_from_this(),
             keys = std::vector<std::string>{key, key + ":queue", key + ":queued"},
             args = std::vector<std::string>{token, key + ":released"}]() mutable
            -> asio::awaitable<void> {
                auto [ec, reply] =
                    co_await self->run(self->leave_script_, std::move(keys), std::move(args));
                if (ec) {
                    logger()->debug("keyedpool: leaving a lock queue failed: {}", ec.message());
                }
            },
            asio::detached);
    }

    // ---- waiting ------------------------------------------------------------------------------

    /// Registers a waiter for `channel` after a failed attempt sent at `attempt_sent`. Sets
    /// `waiter->notified` when a release already named it meanwhile (or when the subscription may
    /// have missed that): the caller tries again at once. When a SUBSCRIBE has to be sent first,
    /// its confirmation wakes every waiter of the channel to try again.
    asio::awaitable<void> add_waiter(const std::string& channel, std::shared_ptr<Waiter> waiter,
                                     clock::time_point attempt_sent) {
        auto [ec, subscriber] =
            co_await connections.async_get("subscriber", asio::as_tuple(asio::use_awaitable));
        std::lock_guard lock(channels_mutex);
        Channel& entry = channels[channel];
        if (entry.idle) {
            idle_channels.erase(entry.idle_pos);
            entry.idle = false;
        }
        entry.waiters.push_back(waiter);
        if (ec) {
            co_return;  // no subscriber: rely on re-checks
        }
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

    void remove_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter) {
        std::lock_guard lock(channels_mutex);
        auto it = channels.find(channel);
        if (it == channels.end()) {
            return;
        }
        it->second.waiters.remove(waiter);
        if (!it->second.waiters.empty()) {
            return;
        }
        it->second.idle = true;
        it->second.idle_pos = idle_channels.insert(idle_channels.end(), channel);
        if (idle_channels.size() > max_idle_channels) {
            drop_channel(idle_channels.front());
        }
    }

    /// Unsubscribes and forgets an idle channel. Under channels_mutex. `name` is a copy: the
    /// caller's string may be the `idle_channels` element this erases.
    void drop_channel(const std::string name) {
        auto it = channels.find(name);
        if (it == channels.end()) {
            return;
        }
        if (it->second.idle) {
            idle_channels.erase(it->second.idle_pos);
        }
        if (auto subscriber = connections.try_get("subscriber");
            subscriber && subscriber.get() == it->second.subscribed_on) {
            subscriber->async_exec(command("UNSUBSCRIBE", name), [](error_code, Reply) {});
        }
        channels.erase(it);
    }

    void on_message(const Reply& message) {  // on the subscriber connection's strand
        if (message.elements().size() < 2) {
            return;
        }
        std::lock_guard lock(channels_mutex);
        // ["message", channel, token of the waiter whose turn it is]
        if (message.elements().size() < 3) {
            return;
        }
        const std::string next = message.elements()[2].text();
        if (auto it = channels.find(message.elements()[1].text()); it != channels.end()) {
            bool found = false;
            for (auto& waiter : it->second.waiters) {
                if (waiter->token == next) {
                    wake(waiter);
                    found = true;
                }
            }
            if (!found) {
                it->second.missed = next;
            }
        }
    }

    using Acquired = detail::Acquired;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only) {
        if (auto ec = detail::check_lock_request(
                resource, options, self->options.max_resource_bytes, self->options.logger)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const auto deadline = clock::now() + options.wait;
        const error_code gave_up = try_only ? ResultCode::lock_busy : ResultCode::lock_timeout;
        auto executor = co_await asio::this_coro::executor;

        // 1. Queue locally: one contender per resource and process.
        auto [queue_ec, hold] = co_await detail::queue_locally(
            self->local_queue, resource, options, try_only, deadline, *TimeSource::steady());
        if (queue_ec) {
            co_return Acquired{queue_ec, LockGuard{}};
        }

        // 2. Contend in Redis: try, subscribe, try again, sleep until a release message (or the
        //    holder's lease, our deadline, or the re-check interval).
        const std::string token = detail::random_token();
        const std::string channel = self->lock_key(resource) + ":released";
        auto waiter = std::make_shared<Waiter>(executor, token);
        bool waiting = false;  // registered for release messages
        bool queued = false;   // has a place in the Redis queue
        bool acquired = false;
        struct Unregister {
            Impl& impl;
            const std::string& resource;
            const std::string& channel;
            std::shared_ptr<Waiter>& waiter;
            const bool& waiting;
            const bool& queued;
            const bool& acquired;
            ~Unregister() {
                if (waiting) {
                    impl.remove_waiter(channel, waiter);
                }
                if (queued && !acquired) {
                    impl.leave_queue(resource, waiter->token);
                }
            }
        } unregister{*self, resource, channel, waiter, waiting, queued, acquired};

        for (;;) {
            const auto sent_at = clock::now();
            Attempt attempt = co_await self->try_acquire(resource, token, options.lease, !try_only);
            if (attempt.ec) {
                co_return Acquired{attempt.ec, LockGuard{}};
            }
            if (attempt.acquired) {
                acquired = true;
                co_return Acquired{
                    error_code{},
                    detail::make_held_lock(self->executor, self, std::move(resource), token,
                                           attempt.fence, options, std::move(hold), sent_at,
                                           TimeSource::steady(), self->options.logger)};
            }
            queued = !try_only;
            const auto now = clock::now();
            if (try_only || now >= deadline) {
                co_return Acquired{gave_up, LockGuard{}};
            }
            if (!waiting) {
                waiting = true;
                co_await self->add_waiter(channel, waiter, sent_at);
            }
            if (waiter->notified) {
                waiter->notified = false;
                continue;
            }
            auto sleep = std::min<clock::duration>(deadline - now, self->options.recheck_interval);
            if (attempt.remaining_ms > 0) {
                sleep = std::min<clock::duration>(sleep,
                                                  std::chrono::milliseconds(attempt.remaining_ms));
            }
            waiter->timer.expires_after(sleep);
            co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
            waiter->notified = false;
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
    Script acquire{acquire_script, {}};
    Script release_script_{release_script, {}};
    Script renew_script_{renew_script, {}};
    Script leave_script_{leave_script, {}};
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
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument("RedisLockServiceOptions.max_resource_bytes must be > 0");
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
