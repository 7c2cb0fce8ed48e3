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

// KEYS[1] lock key, KEYS[2] fence key; ARGV[1] token, ARGV[2] lease in ms.
// Returns {1, fencing token} when acquired, {0, remaining lease in ms} when held elsewhere.
constexpr const char* acquire_script = R"lua(
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
)lua";

// KEYS[1] lock key; ARGV[1] token, ARGV[2] release channel. 1 when released, 0 when not the owner.
constexpr const char* release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  return 1
end
return 0
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
    explicit Waiter(const asio::any_io_executor& ex) : executor(ex), timer(ex) {}
    asio::any_io_executor executor;
    asio::steady_timer timer;
    bool notified = false;  // on `executor`: a wake-up arrived while not sleeping
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

    struct Channel {
        std::list<std::shared_ptr<Waiter>> waiters;
        const Connection* subscribed_on = nullptr;
    };

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

    asio::awaitable<Attempt> try_acquire(const std::string& resource, const std::string& token,
                                         clock::duration lease) {
        const auto key = lock_key(resource);
        std::vector<std::string> keys{key, key + ":fence"};
        std::vector<std::string> args{token, std::to_string(lease_ms(lease))};
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
        std::vector<std::string> keys{key};
        std::vector<std::string> args{state.token, key + ":released"};
        auto [ec, reply] = co_await run(release_script_, std::move(keys), std::move(args));
        if (ec) {
            co_return ec;
        }
        co_return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    // ---- waiting ------------------------------------------------------------------------------

    /// Adds a waiter for `channel`, subscribing first if this subscriber connection is not yet
    /// subscribed. Returns true when a SUBSCRIBE was sent: its confirmation wakes the waiter (so
    /// the waiter retries only once the subscription is live).
    asio::awaitable<bool> add_waiter(const std::string& channel, std::shared_ptr<Waiter> waiter) {
        auto [ec, subscriber] =
            co_await connections.async_get("subscriber", asio::as_tuple(asio::use_awaitable));
        std::lock_guard lock(channels_mutex);
        Channel& entry = channels[channel];
        entry.waiters.push_back(waiter);
        if (ec || entry.subscribed_on == subscriber.get()) {
            co_return false;  // already subscribed (or no subscriber: rely on re-checks)
        }
        entry.subscribed_on = subscriber.get();
        // Initiated under the mutex, so SUBSCRIBE/UNSUBSCRIBE reach the server in decision order.
        subscriber->async_exec(command("SUBSCRIBE", channel),
                               [waiter](error_code, Reply) { wake(waiter); });
        co_return true;
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
        if (auto subscriber = connections.try_get("subscriber");
            subscriber && subscriber.get() == it->second.subscribed_on) {
            subscriber->async_exec(command("UNSUBSCRIBE", channel), [](error_code, Reply) {});
        }
        channels.erase(it);
    }

    void on_message(const Reply& message) {  // on the subscriber connection's strand
        if (message.elements().size() < 2) {
            return;
        }
        std::lock_guard lock(channels_mutex);
        if (auto it = channels.find(message.elements()[1].text()); it != channels.end()) {
            for (auto& waiter : it->second.waiters) {
                wake(waiter);
            }
        }
    }

    using Acquired = detail::Acquired;

    static asio::awaitable<Acquired> lock(std::shared_ptr<Impl> self, std::string resource,
                                          LockOptions options, bool try_only) {
        if (auto ec =
                detail::check_lock_request(resource, options, self->options.max_resource_bytes)) {
            co_return Acquired{ec, LockGuard{}};
        }
        const auto deadline = clock::now() + options.wait;
        const error_code gave_up = try_only ? ResultCode::lock_busy : ResultCode::lock_timeout;
        auto executor = co_await asio::this_coro::executor;

        // 1. Queue locally: one contender per resource and process.
        auto [queue_ec, hold] = co_await detail::queue_locally(self->local_queue, resource, options,
                                                               try_only, deadline);
        if (queue_ec) {
            co_return Acquired{queue_ec, LockGuard{}};
        }

        // 2. Contend in Redis: try, subscribe, try again, sleep until a release message (or the
        //    holder's lease, our deadline, or the re-check interval).
        const std::string token = detail::random_token();
        const std::string channel = self->lock_key(resource) + ":released";
        auto waiter = std::make_shared<Waiter>(executor);
        bool waiting = false;
        struct Unregister {
            Impl& impl;
            const std::string& channel;
            std::shared_ptr<Waiter>& waiter;
            bool& active;
            ~Unregister() {
                if (active) {
                    impl.remove_waiter(channel, waiter);
                }
            }
        } unregister{*self, channel, waiter, waiting};

        for (;;) {
            const auto sent_at = clock::now();
            Attempt attempt = co_await self->try_acquire(resource, token, options.lease);
            if (attempt.ec) {
                co_return Acquired{attempt.ec, LockGuard{}};
            }
            if (attempt.acquired) {
                co_return Acquired{
                    error_code{},
                    detail::make_held_lock(self->executor, self, std::move(resource), token,
                                           attempt.fence, options, std::move(hold), sent_at)};
            }
            const auto now = clock::now();
            if (try_only || now >= deadline) {
                co_return Acquired{gave_up, LockGuard{}};
            }
            if (!waiting) {
                waiting = true;
                if (!co_await self->add_waiter(channel, waiter)) {
                    continue;  // already subscribed: try again at once
                }
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
    std::mutex channels_mutex;
    std::unordered_map<std::string, Channel> channels;
    std::atomic<std::uint64_t> requests_sent{0};
};

RedisLockService::RedisLockService(asio::any_io_executor executor,
                                   RedisLockServiceOptions options) {
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
