// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP

/// \file
/// What the Redis lock service and the Redis semaphore service share: the two connections
/// (commands, pub/sub), scripts run before a deadline, and waiting for a hand-over — waiters
/// registered on a resource's hand-over channel, woken by the message naming them, re-trying
/// at least every `recheck_interval`.

#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/time_source.hpp>

#include "../core/acquisition_fsm.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace keyedpool::redis::detail {

using clock = std::chrono::steady_clock;

/// Throws `std::invalid_argument` naming the first invalid field of `options` as `name.field`.
void validate(const RedisLockServiceOptions& options, const char* name);

/// `lease` in whole milliseconds, rounded up.
long long lease_ms(clock::duration lease);

/// One acquisition waiting for a hand-over: a timer on the waiter's own executor, cancelled to
/// wake it early.
struct Waiter {
    Waiter(const boost::asio::any_io_executor& ex, const TimeSource& time, std::string t)
        : executor(ex), timer(time.make_timer(ex)), token(std::move(t)) {}
    boost::asio::any_io_executor executor;
    std::unique_ptr<TimeSource::Timer> timer;
    bool notified = false;           // on `executor`: a wake-up arrived while not sleeping
    bool handed = false;             // on `executor`: a hand-over message named it
    std::uint64_t handed_fence = 0;  // on `executor`: the fencing token that came with it
    const std::string token;         // a hand-over message naming it ends its wait
};

/// An acquire script's reply: {1, fencing token (0 without)} when acquired, else {0, ms until the
/// lease in the way ends (negative: none)}.
lease::AttemptResult read_attempt(const boost::system::error_code& ec, const Reply& reply);

/// A Lua script and its SHA once loaded.
struct Script {
    Script(const char* body, bool fences, bool waits_for_replicas)
        : plain_body(body),
          sharded_body(sharded(body)),
          hands_out_fences(fences),
          replicated(waits_for_replicas) {}
    /// A script's body for a Redis Cluster: hand-over messages go out with SPUBLISH (sharded
    /// pub/sub, to the subscribers of the slot's shard only) instead of PUBLISH (to every node).
    static std::string sharded(const char* body);

    std::string plain_body;    // for one server or Sentinel
    std::string sharded_body;  // for a cluster
    bool hands_out_fences;     // its last argument is the primary's config epoch (see run)
    bool replicated;           // waits for min_replicas_acked replicas (see run)
    std::string sha;           // guarded by LeaseClient's scripts mutex; empty until loaded
};

/// The Redis side of leases. Held by `shared_ptr` (its connections' callbacks keep a weak one).
class LeaseClient : public std::enable_shared_from_this<LeaseClient> {
  public:
    /// `options` are validated by the caller.
    LeaseClient(boost::asio::any_io_executor executor, RedisLockServiceOptions options);

    const RedisLockServiceOptions& options() const noexcept { return options_; }
    const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
    /// The service's clock and timers (`options().time`, or the steady clock).
    const std::shared_ptr<const TimeSource>& time() const noexcept { return time_; }
    std::shared_ptr<spdlog::logger> log() const;
    /// Scripts sent so far.
    std::uint64_t requests_sent() const noexcept {
        return requests_sent_.load(std::memory_order_relaxed);
    }
    /// Closes the connections.
    void shutdown();

    // ---- requests ------------------------------------------------------------------------

    /// The deadline of a request made outside a wait (release, renewal, clean-up).
    clock::time_point request_deadline() const { return time_->now() + options_.request_timeout; }

    /// Runs a script before `deadline`: EVALSHA, loading it first, and EVAL when the server lost
    /// it (NOSCRIPT). Appends the primary's config epoch when the script hands out fencing tokens,
    /// and WAITs for `min_replicas_acked` replicas after a replicated one.
    boost::asio::awaitable<std::pair<boost::system::error_code, Reply>> run(
        Script& script, std::vector<std::string> keys, std::vector<std::string> args,
        clock::time_point deadline);

    /// Runs (a copy of) `script` in the background until it succeeds, retrying transient failures
    /// for as long as a queue place lasts (it would block the queue's head until then). Best
    /// effort: what it fails to give back expires by itself. May outlive the caller's service.
    void give_back(const Script& script, std::vector<std::string> keys,
                   std::vector<std::string> args);

    /// How long a waiter keeps its place in a Redis queue without trying again: a few re-check
    /// intervals (a live waiter tries at least once per interval).
    long long queue_place_ms() const;

    // ---- waiting for a hand-over -----------------------------------------------------------

    /// A resource's keys, in the order its scripts take them, from its key (`prefix{resource}`).
    using KeysOf = std::vector<std::string> (*)(const std::string& key);

    /// What the client holds for one acquisition: its waiter and registration on the hand-over
    /// channel (made when it first waits: an uncontended acquisition makes neither) and, when it
    /// ends without what it asked for, whatever the server may hold for its token, given back by
    /// `give_back_script` with `keys_of(key)` and {token, channel} (on every path out, including
    /// an exception from a cancelled coroutine).
    struct Acquisition {
        Acquisition(LeaseClient& c, boost::asio::any_io_executor ex, std::string own_token,
                    std::string resource_key, std::string channel_name, Script& give_back_with,
                    KeysOf keys)
            : client(c),
              executor(std::move(ex)),
              token(std::move(own_token)),
              key(std::move(resource_key)),
              channel(std::move(channel_name)),
              give_back_script(give_back_with),
              keys_of(keys) {}
        Acquisition(const Acquisition&) = delete;
        Acquisition& operator=(const Acquisition&) = delete;
        ~Acquisition();

        /// Its waiter, made on first use.
        const std::shared_ptr<Waiter>& waiter();

        LeaseClient& client;
        const boost::asio::any_io_executor executor;
        const std::string token;
        const std::string key;
        const std::string channel;
        Script& give_back_script;
        const KeysOf keys_of;
        std::shared_ptr<Waiter> waiter_;  // null until it first waits
        bool registered = false;          // for hand-over messages
        bool on_server = false;  // the server may hold a lease or a queue place for the token
        bool acquired = false;
    };

    /// What the acquisition machine is asked for, with this client's re-check interval and request
    /// timeout.
    lease::AcquisitionParams acquisition_params(clock::duration wait, clock::duration lease,
                                                bool try_only) const {
        lease::AcquisitionParams params;
        params.wait = wait;
        params.try_only = try_only;
        params.lease = lease;
        params.request_timeout = options_.request_timeout;
        params.recheck_interval = options_.recheck_interval;
        return params;
    }

    /// Waits until `until` (on the service's clock), a wake-up, or the caller's cancellation
    /// (`operation_aborted`). `for_hand_over`: the caller is queued on the server since an attempt
    /// sent at `attempt_sent`: first registers for hand-over messages and makes sure the channel is
    /// subscribed (subscribing on first use); a hand-over naming the waiter sets `handed`.
    boost::asio::awaitable<boost::system::error_code> wait_for_turn(Acquisition& acquisition,
                                                                    clock::time_point attempt_sent,
                                                                    bool for_hand_over,
                                                                    clock::time_point until);

    /// The loop both services run for an acquisition: the I/O of `lease::AcquisitionFsm`'s
    /// decisions, for an acquisition that started at `started`. `try_once(until, queue)` sends the
    /// acquire script and returns its `lease::AttemptResult`; `grant(fence, held_from)` turns a
    /// lease held since `held_from` into the result. `Result` is a pair of error code and guard.
    /// `permits` 0: a lock (for the log). `diagnostics` (null, or the caller's) gets the cause and
    /// the attempts.
    template <typename Result, typename TryOnce, typename Grant>
    boost::asio::awaitable<Result> contend(Acquisition& acquisition,
                                           const lease::AcquisitionParams& params,
                                           clock::time_point started, const std::string& resource,
                                           std::size_t permits, LockDiagnostics* diagnostics,
                                           TryOnce try_once, Grant grant) {
        using Guard = typename Result::second_type;
        using Type = lease::AcquisitionAction::Type;
        lease::AcquisitionFsm fsm(params, started);
        lease::AcquisitionAction action = fsm.start(time_->now());
        clock::time_point sent_at{};
        for (;;) {
            if (action.late_by > clock::duration::zero()) {
                log_late_grant(resource, permits, params.lease, action.late_by,
                               action.type == Type::attempt);
            }
            switch (action.type) {
                case Type::attempt: {
                    sent_at = time_->now();
                    acquisition.on_server = true;
                    const lease::AttemptResult result =
                        co_await try_once(action.until, action.queue);
                    action = fsm.attempted(result, time_->now());
                    break;
                }
                case Type::wait: {
                    Waiter& waiter = *acquisition.waiter();
                    // A hand-over may have named the waiter while its attempt was out.
                    if (!waiter.handed) {
                        if (co_await wait_for_turn(acquisition, sent_at, action.for_hand_over,
                                                   action.until)) {
                            action = fsm.cancelled(time_->now());
                            break;
                        }
                    }
                    action = std::exchange(waiter.handed, false)
                                 ? fsm.handed_over(waiter.handed_fence, time_->now())
                                 : fsm.woken(time_->now());
                    break;
                }
                case Type::done:
                    acquisition.on_server = action.give_back;
                    if (diagnostics) {
                        diagnostics->cause = action.cause;
                        diagnostics->attempts = fsm.attempts();
                    }
                    if (action.ec) {
                        if (action.cause) {
                            log()->debug("keyedpool: acquiring {} ended with {} (last cause: {})",
                                         resource, action.ec.message(), action.cause.message());
                        }
                        co_return Result{action.ec, Guard{}};
                    }
                    acquisition.acquired = true;
                    co_return grant(action.fence, action.held_from);
            }
        }
    }

  private:
    using Pool = KeyedClientPool<std::string, Connection>;
    using ClusterPool = KeyedClientPool<int, ClusterClient>;  // one key: 0

    /// A hand-over channel this process listens to. It stays subscribed for a while after its last
    /// waiter left (up to `max_idle_channels` idle ones), so back-to-back contention on a resource
    /// does not pay a SUBSCRIBE, and the retry after it, per acquisition.
    struct Channel {
        std::list<std::shared_ptr<Waiter>> waiters;
        const Connection* subscribed_on = nullptr;
        clock::time_point confirmed_at{};  // when SUBSCRIBE was confirmed on `subscribed_on`
        bool confirmed = false;
        // The last tokens named by hand-overs while no waiter here had them (a release of
        // permits can name several at once); at most `max_missed`.
        std::deque<std::string> missed;
        std::string subscriber_role;  // the role of `subscribed_on` in `connections_`
        bool idle = false;            // in `idle_channels`
        std::list<std::string>::iterator idle_pos;
    };
    static constexpr std::size_t max_idle_channels = 64;
    static constexpr std::size_t max_missed = 16;

    bool on_cluster() const noexcept { return cluster_ != nullptr; }
    /// A deadline on the service's clock as a deadline of the steady clock, for the connections.
    clock::time_point io_deadline(clock::time_point deadline) const;
    /// Logs a grant that came back with less than half its lease left.
    void log_late_grant(const std::string& resource, std::size_t permits, clock::duration lease,
                        clock::duration late_by, bool again) const;
    boost::asio::awaitable<std::shared_ptr<Connection>> connect(const std::string& role);
    /// The cluster client (made on first use), before `deadline`.
    boost::asio::awaitable<std::pair<boost::system::error_code, std::shared_ptr<ClusterClient>>>
    cluster_client(clock::time_point deadline);
    /// The subscriber connection's role in `connections_` for `channel`: "subscriber", or on a
    /// cluster "subscriber <host>:<port>" of the primary serving the channel's slot (empty when
    /// the map has none).
    boost::asio::awaitable<std::string> subscriber_role(const std::string& channel,
                                                        clock::time_point deadline);
    boost::asio::awaitable<std::pair<boost::system::error_code, std::shared_ptr<Connection>>>
    connection(const std::string& role, clock::time_point deadline);
    boost::asio::awaitable<boost::system::error_code> replicas_acked(Connection& connection,
                                                                     clock::time_point deadline);

    void register_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter);
    boost::asio::awaitable<void> subscribe(const std::string& channel,
                                           std::shared_ptr<Waiter> waiter,
                                           clock::time_point attempt_sent,
                                           clock::time_point deadline);
    void subscribed(const std::string& channel, const Connection* on, bool ok);
    void subscriber_closed(const Connection* on);
    void remove_waiter(const std::string& channel, const std::shared_ptr<Waiter>& waiter);
    void drop_idle_channel(const std::string name);
    void check_channels() const;
    void on_message(const Reply& message, const Connection* on);

    boost::asio::any_io_executor executor_;
    RedisLockServiceOptions options_;
    std::shared_ptr<const TimeSource> time_;
    Pool connections_;  // "commands" and "subscriber" (cluster: one subscriber per primary)
    std::unique_ptr<ClusterPool> cluster_;  // on a cluster only
    std::mutex scripts_mutex_;
    std::mutex channels_mutex_;
    std::unordered_map<std::string, Channel> channels_;
    std::list<std::string> idle_channels_;  // subscribed, no waiter; oldest first
    std::atomic<std::uint64_t> requests_sent_{0};
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP
