// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_REGISTRY_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_REGISTRY_HPP

/// \file
/// The hand-over channels a process listens to, without I/O: which waiters wait on which
/// channel, on which subscriber connection each channel is subscribed and since when, the idle
/// channels kept subscribed (and the cap on them), and the hand-overs that named nobody yet.
/// Events in (a waiter registered or gone, a subscription wanted, confirmed or refused, a
/// subscriber connection closed, the server dropping a subscription, a hand-over message), the
/// decisions out (send SUBSCRIBE on this connection, UNSUBSCRIBE that channel, wake these waiters,
/// this waiter's turn may have come: try now). `HandOverChannels` runs it under its mutex; its
/// unit tests walk every path without a server.
///
/// Invariant (`check()`): every channel is either waited on (waiters, not idle) or idle (no
/// waiters, listed once in the idle list); at most `max_idle` are idle. A waiter is added before
/// anything can observe it and removed exactly once.

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace keyedpool::redis::detail {

/// A hand-over message's payload, "<token>[ <fencing token>]": whom the lease went to.
struct HandOver {
    std::string_view token;
    std::uint64_t fence = 0;  // 0: none (a semaphore's, or a malformed one)
};

/// Parses a hand-over payload; a missing or unreadable fencing token is 0.
inline HandOver parse_hand_over(std::string_view payload) {
    HandOver out;
    const auto space = payload.find(' ');
    out.token = payload.substr(0, space);
    if (space != std::string_view::npos) {
        const char* first = payload.data() + space + 1;
        const auto [end, ec] = std::from_chars(first, payload.data() + payload.size(), out.fence);
        if (ec != std::errc{} || end != payload.data() + payload.size()) {
            out.fence = 0;
        }
    }
    return out;
}

/// `Waiter`: a copyable handle compared with `==`, with a `token()` accessor through
/// `token_of(const Waiter&)` (found by argument-dependent lookup); `Route`: what the caller needs
/// to find a subscriber connection again (kept for the UNSUBSCRIBE of a dropped channel).
/// Subscriber connections are told apart by an opaque `SubscriberId`, never dereferenced.
template <typename Waiter, typename Route>
class HandOverRegistry {
  public:
    using clock = std::chrono::steady_clock;
    using SubscriberId = const void*;

    static constexpr std::size_t max_idle = 64;    // idle channels kept subscribed
    static constexpr std::size_t max_missed = 16;  // hand-overs naming nobody here, per channel

    /// What a waiter about to sleep must do about its channel's subscription.
    struct SubscribeStep {
        bool send_subscribe = false;  // send SUBSCRIBE on the connection asked about
        bool try_now = false;         // its turn may have come (or been missed): try again now
    };

    /// A channel to UNSUBSCRIBE from: dropped as the oldest idle one beyond the cap.
    struct Unsubscribe {
        std::string channel;
        SubscriberId on = nullptr;
        Route route{};
    };

    /// Registers `waiter` for hand-overs on `channel` (an idle channel is waited on again, keeping
    /// its subscription).
    void add(const std::string& channel, const Waiter& waiter) {
        Channel& entry = channels_[channel];
        if (entry.idle) {
            idle_.erase(entry.idle_pos);
            entry.idle = false;
        }
        entry.waiters.push_back(waiter);
        check();
    }

    /// Unregisters a waiter `add` registered; its channel turns idle with its last waiter. Returns
    /// the oldest idle channel when that went over the cap and was subscribed (forgotten here: the
    /// caller unsubscribes it if its connection is still `on`).
    std::optional<Unsubscribe> remove(const std::string& channel, const Waiter& waiter) {
        auto it = channels_.find(channel);
        assert(it != channels_.end() && !it->second.idle);
        if (it == channels_.end() || it->second.idle) {
            return std::nullopt;
        }
        auto& waiters = it->second.waiters;
        waiters.erase(std::find(waiters.begin(), waiters.end(), waiter));
        std::optional<Unsubscribe> dropped;
        if (waiters.empty()) {
            it->second.idle = true;
            it->second.idle_pos = idle_.insert(idle_.end(), channel);
            if (idle_.size() > max_idle) {
                dropped = drop_oldest_idle();
            }
        }
        check();
        return dropped;
    }

    /// A waiter of `channel` with `token`, whose last attempt was sent at `attempt_sent`, is about
    /// to sleep; `on` is the subscriber connection for the channel now (reached via `route`).
    /// Already subscribed there: try now when the subscription went live after the attempt (a
    /// hand-over in between could be lost) or a hand-over named the token before it registered.
    /// Subscribed elsewhere or not at all: subscribe on `on` (its confirmation wakes the waiters).
    SubscribeStep subscribe(const std::string& channel, std::string_view token, SubscriberId on,
                            const Route& route, clock::time_point attempt_sent) {
        auto it = channels_.find(channel);
        if (it == channels_.end() || it->second.idle) {
            return {};  // not waited on any more
        }
        Channel& entry = it->second;
        if (entry.subscribed_on == on) {
            if (!entry.confirmed || entry.confirmed_at > attempt_sent) {
                return {false, entry.confirmed};  // unconfirmed: its confirmation wakes it
            }
            return {false, std::find(entry.missed.begin(), entry.missed.end(), token) !=
                               entry.missed.end()};
        }
        entry.subscribed_on = on;
        entry.route = route;
        entry.confirmed = false;
        return {true, false};
    }

    /// The server answered the SUBSCRIBE of `channel` sent on `on` at `now`: confirmed (`ok`)
    /// wakes every waiter of the channel to try again; refused leaves it unsubscribed (each
    /// waiter subscribes again at its next turn: waking them would loop). A stale answer (the
    /// channel moved to another connection since, or is gone) changes nothing.
    template <typename Wake>
    void subscribed(const std::string& channel, SubscriberId on, bool ok, clock::time_point now,
                    Wake&& wake) {
        auto it = channels_.find(channel);
        if (it == channels_.end() || it->second.subscribed_on != on) {
            return;
        }
        it->second.confirmed = ok;
        it->second.confirmed_at = now;
        if (!ok) {
            it->second.subscribed_on = nullptr;
            return;
        }
        for (const auto& waiter : it->second.waiters) {
            wake(waiter);
        }
    }

    /// The subscriber connection `on` closed: its channels are no longer subscribed, and their
    /// waiters try again at once (subscribing on the next connection).
    template <typename Wake>
    void subscriber_closed(SubscriberId on, Wake&& wake) {
        for (auto& [name, entry] : channels_) {
            if (entry.subscribed_on == on) {
                unsubscribed(entry, wake);
            }
        }
    }

    /// The server dropped `channel`'s subscription on `on` (a sharded channel whose slot moved):
    /// its waiters try again at once and subscribe where the slot is now.
    template <typename Wake>
    void dropped_by_server(const std::string& channel, SubscriberId on, Wake&& wake) {
        if (auto it = channels_.find(channel);
            it != channels_.end() && it->second.subscribed_on == on) {
            unsubscribed(it->second, wake);
        }
    }

    /// A hand-over on `channel` named `token`: wakes the waiters with it as handed the lease
    /// (`wake(waiter)`); when none here has it, remembers it (the last `max_missed`) for a waiter
    /// that registers after its turn came.
    template <typename Wake>
    void handed_over(const std::string& channel, std::string_view token, Wake&& wake) {
        auto it = channels_.find(channel);
        if (it == channels_.end()) {
            return;
        }
        bool found = false;
        for (const auto& waiter : it->second.waiters) {
            if (token_of(waiter) == token) {
                wake(waiter);
                found = true;
            }
        }
        if (!found) {
            auto& missed = it->second.missed;
            missed.emplace_back(token);
            if (missed.size() > max_missed) {
                missed.pop_front();
            }
        }
    }

    std::size_t channels() const noexcept { return channels_.size(); }
    std::size_t idle_channels() const noexcept { return idle_.size(); }
    /// Whether `channel` is subscribed on `on` (confirmed or not).
    bool subscribed_on(const std::string& channel, SubscriberId on) const {
        auto it = channels_.find(channel);
        return it != channels_.end() && it->second.subscribed_on == on;
    }

    /// The invariant (debug builds).
    void check() const {
#ifndef NDEBUG
        std::size_t idle = 0;
        for (const auto& [name, entry] : channels_) {
            assert(entry.idle == entry.waiters.empty());
            if (entry.idle) {
                assert(*entry.idle_pos == name);
                ++idle;
            }
        }
        assert(idle == idle_.size());
        assert(idle_.size() <= max_idle);
#endif
    }

  private:
    struct Channel {
        std::list<Waiter> waiters;
        SubscriberId subscribed_on = nullptr;
        Route route{};                     // how the caller finds `subscribed_on` again
        clock::time_point confirmed_at{};  // when SUBSCRIBE was confirmed on `subscribed_on`
        bool confirmed = false;
        std::deque<std::string> missed;  // the last tokens handed over while not waiting here
        bool idle = false;               // in `idle_`
        typename std::list<std::string>::iterator idle_pos;
    };

    template <typename Wake>
    static void unsubscribed(Channel& entry, Wake& wake) {
        entry.subscribed_on = nullptr;
        entry.confirmed = false;
        for (const auto& waiter : entry.waiters) {
            wake(waiter);
        }
    }

    std::optional<Unsubscribe> drop_oldest_idle() {
        const std::string name = idle_.front();  // a copy: erased below
        auto it = channels_.find(name);
        assert(it != channels_.end() && it->second.idle && it->second.waiters.empty());
        idle_.pop_front();
        std::optional<Unsubscribe> dropped;
        if (it->second.subscribed_on) {
            dropped = Unsubscribe{name, it->second.subscribed_on, std::move(it->second.route)};
        }
        channels_.erase(it);
        return dropped;
    }

    std::unordered_map<std::string, Channel> channels_;
    std::list<std::string> idle_;  // subscribed, no waiter; oldest first
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_HAND_OVER_REGISTRY_HPP
