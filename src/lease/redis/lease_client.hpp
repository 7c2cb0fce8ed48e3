// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP

/// \file
/// What the Redis lock service and the Redis semaphore service share: their connections
/// (`LeaseConnections`), their scripts (`ScriptRunner`), the hand-over channels
/// (`HandOverChannels`), one acquisition's state on the client (`Acquisition`), and giving back
/// what an acquisition that ended without its lease may hold on the server. The acquisition loop
/// itself is `contend` (contend.hpp).

#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/time_source.hpp>

#include "../core/acquisition_fsm.hpp"
#include "hand_over_channels.hpp"
#include "lease_connections.hpp"
#include "script_runner.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace keyedpool::redis::detail {

/// Throws `std::invalid_argument` naming the first invalid field of `options` as `name.field`.
void validate(const RedisLockServiceOptions& options, const char* name);

/// `lease` in whole milliseconds, rounded up.
long long lease_ms(clock::duration lease);

/// The Redis side of leases. Held by `shared_ptr` (a give-back keeps it alive).
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
    std::uint64_t requests_sent() const noexcept { return scripts_.requests_sent(); }
    /// Closes the connections.
    void shutdown() { connections_.shutdown(); }

    // ---- requests ------------------------------------------------------------------------

    /// The deadline of a request made outside a wait (release, renewal, clean-up).
    clock::time_point request_deadline() const { return time_->now() + options_.request_timeout; }

    /// Runs a script before `until` (on the service's clock); see `ScriptRunner::run`.
    boost::asio::awaitable<std::pair<boost::system::error_code, Reply>> run(
        Script& script, std::vector<std::string> keys, std::vector<std::string> args,
        clock::time_point until) {
        return scripts_.run(connections_, script, std::move(keys), std::move(args),
                            connections_.io_deadline(until));
    }

    /// Runs (a copy of) `script` in the background until it succeeds, retrying transient failures
    /// for as long as a queue place lasts (it would block the queue's head until then). Best
    /// effort: what it fails to give back expires by itself. May outlive the caller's service.
    void give_back(const Script& script, std::vector<std::string> keys,
                   std::vector<std::string> args);

    /// How long a waiter keeps its place in a Redis queue without trying again: a few re-check
    /// intervals (a live waiter tries at least once per interval).
    long long queue_place_ms() const;

    // ---- one acquisition ---------------------------------------------------------------------

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
                                                bool try_only) const;

    /// Waits until `until` (on the service's clock), a wake-up, or the caller's cancellation
    /// (`operation_aborted`). `for_hand_over`: the caller is queued on the server since an attempt
    /// sent at `attempt_sent`: first registers for hand-over messages and makes sure the channel is
    /// subscribed (subscribing on first use); a hand-over naming the waiter sets `handed`.
    boost::asio::awaitable<boost::system::error_code> wait_for_turn(Acquisition& acquisition,
                                                                    clock::time_point attempt_sent,
                                                                    bool for_hand_over,
                                                                    clock::time_point until);

    /// Logs a grant that came back with less than half its lease left.
    void log_late_grant(const std::string& resource, std::size_t permits, clock::duration lease,
                        clock::duration late_by, bool again) const;

  private:
    boost::asio::any_io_executor executor_;
    RedisLockServiceOptions options_;
    std::shared_ptr<const TimeSource> time_;
    std::shared_ptr<HandOverChannels> channels_;
    LeaseConnections connections_;  // after options_ and channels_: it refers to both
    ScriptRunner scripts_;
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_LEASE_CLIENT_HPP
