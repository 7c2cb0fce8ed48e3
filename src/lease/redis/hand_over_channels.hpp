// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_CHANNELS_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_CHANNELS_HPP

/// \file
/// Waiting for a hand-over: waiters registered on a resource's hand-over channel, the channel
/// subscribed on a subscriber connection, the waiter woken (on its own executor) by the message
/// naming it or by anything that may have made it miss one. The decisions are
/// `HandOverRegistry`'s; this runs them: the registry under a mutex, SUBSCRIBE/UNSUBSCRIBE sent
/// in decision order, wake-ups posted.

#include <keyedpool/redis/connection.hpp>
#include <keyedpool/time_source.hpp>

#include "hand_over_registry.hpp"
#include "lease_connections.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace keyedpool::redis::detail {

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

inline std::string_view token_of(const std::shared_ptr<Waiter>& waiter) {
    return waiter->token;
}

/// Held by `shared_ptr` (its connections' callbacks keep a weak one).
class HandOverChannels : public std::enable_shared_from_this<HandOverChannels> {
  public:
    /// `sharded`: on a cluster (SSUBSCRIBE, sharded hand-over messages).
    HandOverChannels(std::shared_ptr<const TimeSource> time, bool sharded)
        : time_(std::move(time)), sharded_(sharded) {}

    /// Registers `waiter` for hand-over messages on `channel`. Synchronous: no cancellation can
    /// land between deciding to wait and being registered.
    void add(const std::string& channel, const std::shared_ptr<Waiter>& waiter);
    /// Unregisters a waiter `add` registered (unsubscribing the oldest idle channel beyond the
    /// cap).
    void remove(LeaseConnections& connections, const std::string& channel,
                const std::shared_ptr<Waiter>& waiter);

    /// Makes sure `channel` is subscribed on its current subscriber connection (waiting for that
    /// connection at most until `deadline`, on the steady clock). Sets `waiter->notified` when a
    /// hand-over already named it meanwhile (or when the subscription may have missed one): the
    /// caller tries again at once. A SUBSCRIBE sent here wakes every waiter of the channel when
    /// it is confirmed.
    boost::asio::awaitable<void> subscribe(LeaseConnections& connections,
                                           const std::string& channel,
                                           std::shared_ptr<Waiter> waiter,
                                           clock::time_point attempt_sent,
                                           clock::time_point deadline);

    /// Watches a new subscriber connection: its messages, and its end (its subscriptions die with
    /// it: the waiters learn it at once, not at their next re-check, and subscribe again on the
    /// next connection, e.g. after a failover).
    void watch(Connection& subscriber);

  private:
    void subscribed(const std::string& channel, const Connection* on, bool ok);
    void closed(const Connection* on);
    void on_message(const Reply& message, const Connection* on);

    std::shared_ptr<const TimeSource> time_;
    const bool sharded_;
    std::mutex mutex_;
    HandOverRegistry<std::shared_ptr<Waiter>, ConnectionRole> registry_;  // under mutex_
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_CHANNELS_HPP
