// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_DECISIONS_HPP
#define KEYEDPOOL_DETAIL_POOL_DECISIONS_HPP

/// \file
/// The pool's decisions as plain functions and a small state machine, free of locks, executors and
/// clocks, so each can be unit-tested on its own (tests/unit/pool_decisions_test.cpp). The engine
/// gathers the facts under the right lock, asks here what to do, and does it.

#include <keyedpool/result_code.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>

namespace keyedpool::detail::pool {

/// What the cache shard knows about a key, read under the shard's lock.
struct KeyFacts {
    bool has_client = false;        ///< a client is cached
    bool client_healthy = false;    ///< ... and `Traits::is_healthy` says it is usable
    bool has_failure = false;       ///< the last build failed and that is remembered
    std::uint64_t failure_seq = 0;  ///< when that failure was recorded (the pool's event counter)
    bool in_backoff = false;        ///< the failure's retry deadline is still ahead
    bool flight_open = false;       ///< a build for the key accepts waiters
};

/// The first look of a get, without waiting for anything.
enum class ProbeAction {
    hit,      ///< complete with the cached client
    backoff,  ///< fail fast with `ResultCode::backoff`
    miss,     ///< take the slow path (`decide_miss`)
};

constexpr ProbeAction decide_probe(const KeyFacts& facts) noexcept {
    if (facts.has_client) {
        return facts.client_healthy ? ProbeAction::hit : ProbeAction::miss;
    }
    if (facts.has_failure && facts.in_backoff) {
        return ProbeAction::backoff;
    }
    return ProbeAction::miss;
}

/// What a get that missed does, decided under the key's shard lock (so nothing changes between
/// the decision and the action).
enum class MissAction {
    hit,         ///< a healthy client was stored meanwhile: complete with it
    replace,     ///< the cached client broke: take it out (and close it), then start a build
    same_error,  ///< a build failed after this get first looked: complete with that build's error
    backoff,     ///< a failure's retry deadline is ahead and nothing builds: fail fast
    join,        ///< a build is in flight: wait for its result
    start,       ///< nothing cached, nothing building: start the key's build and wait for it
};

/// `observed` is the pool's event counter when the get first looked: a failure recorded later
/// than that belongs to a build that ended while this get was on its way, so it gets that result
/// instead of building again (one result per build, errors included).
constexpr MissAction decide_miss(const KeyFacts& facts, std::uint64_t observed) noexcept {
    if (facts.has_client) {
        return facts.client_healthy ? MissAction::hit : MissAction::replace;
    }
    if (facts.has_failure && facts.failure_seq > observed) {
        return MissAction::same_error;
    }
    if (facts.flight_open) {
        return MissAction::join;
    }
    if (facts.has_failure && facts.in_backoff) {
        return MissAction::backoff;
    }
    return MissAction::start;
}

/// How a factory call ended, as the build saw it.
struct FactoryReturn {
    bool made_client = false;            ///< it returned a non-null client
    bool healthy = false;                ///< ... and that client passed `Traits::is_healthy`
    boost::system::error_code thrown{};  ///< what it threw, as a code (none: it returned)
};

/// The result a factory call gives the waiters: success (cache the client) or the error they all
/// receive. A thrown code is kept; a null client is `connect_failed`; a client born unhealthy is
/// `unhealthy` (a failed build like any other, with backoff, rather than a rebuild by each waiter).
constexpr boost::system::error_code classify_factory_return(const FactoryReturn& r) noexcept {
    if (r.thrown) {
        return r.thrown;
    }
    if (!r.made_client) {
        return ResultCode::connect_failed;
    }
    if (!r.healthy) {
        return ResultCode::unhealthy;
    }
    return {};
}

/// Whether a failed build's error delays the next build of the key. `pool_exhausted` does not: it
/// says nothing about the key's server, only that the pool was full.
inline bool starts_backoff(const boost::system::error_code& ec) noexcept {
    return ec != ResultCode::pool_exhausted;
}

/// How a flight ended.
enum class FlightEnd {
    none,       ///< still open: accepts waiters
    built,      ///< the factory's client was cached and handed to the waiters
    failed,     ///< the build failed (factory error, no permit); the waiters got the error
    timed_out,  ///< `connect_timeout` elapsed first; the waiters got `ResultCode::timeout`
    abandoned,  ///< every waiter left; the build was cancelled
    shut_down,  ///< the pool shut down; the waiters got `ResultCode::shutting_down`
};

/// The life of one flight (one build of one key and the gets waiting for it).
///
/// Two sides touch it: the waiters and shutdown, under the key's shard lock (`join`, `leave`,
/// `end`), and the build, on the flight's executor (`stage`, the `on_*` events), which also takes
/// the shard lock to end the flight. A flight is *open* from its start until the first `end`; only
/// an open flight accepts waiters, and only the first end counts, so exactly one party completes
/// the waiters. The build may outlive its flight: a factory that ignores cancellation keeps running
/// after a timeout, abandonment or shutdown ended the flight, and its late client is closed.
class FlightLifecycle {
  public:
    /// Where the build is.
    enum class Stage {
        not_started,         ///< created; its first step is on its way to the executor
        waiting_for_permit,  ///< queued for a `max_clients` permit
        calling_factory,     ///< the factory runs; the connect timer is armed
        done,                ///< the factory returned (or was never called): nothing runs
    };

    /// What the build must do after an event.
    enum class Action {
        none,             ///< nothing (e.g. a stale timer)
        wait_for_permit,  ///< queue for a `max_clients` permit
        call_factory,     ///< the permit is held and the flight still open: call the factory
        release_permit,   ///< the permit came after the flight ended: give it back, stop
        finish,           ///< end the flight with the event's result (cache or record it)
        discard,          ///< the flight ended already: close the late client, release, stop
        cancel_factory,   ///< emit cancellation to the running factory
        leave_queue,      ///< leave the permit queue (abandoned or shut down while queued)
    };

    // ---- waiters' side (under the shard lock) ----------------------------------------------

    bool open() const noexcept { return end_ == FlightEnd::none; }
    FlightEnd end_reason() const noexcept { return end_; }
    std::size_t waiters() const noexcept { return waiters_; }

    /// A get joins. Precondition: `open()`.
    void join() noexcept { ++waiters_; }

    /// A queued get left (cancelled). Returns true when that ends the flight (it was the last):
    /// the caller then takes the flight out of the shard and tells the build `on_ended`.
    bool leave() noexcept {
        --waiters_;
        if (waiters_ == 0 && open()) {
            end_ = FlightEnd::abandoned;
            return true;
        }
        return false;
    }

    /// Ends the flight if it is still open; returns whether this call ended it (first end wins).
    bool end(FlightEnd how) noexcept {
        if (!open()) {
            return false;
        }
        end_ = how;
        if (how != FlightEnd::abandoned) {
            waiters_ = 0;  // whoever ends it takes every waiter
        }
        return true;
    }

    // ---- build's side (on the flight's executor) -------------------------------------------

    Stage stage() const noexcept { return stage_; }

    /// The build's first step. It does nothing when the flight ended before it began (its only
    /// waiter left at once); without `max_clients` it calls the factory at once.
    Action on_start(bool needs_permit, bool flight_open) noexcept {
        if (!flight_open) {
            stage_ = Stage::done;
            return Action::none;
        }
        stage_ = needs_permit ? Stage::waiting_for_permit : Stage::calling_factory;
        return needs_permit ? Action::wait_for_permit : Action::call_factory;
    }

    /// The permit was granted (handed over, or free at once). `flight_open` read under the lock.
    Action on_permit_granted(bool flight_open) noexcept {
        if (!flight_open) {
            stage_ = Stage::done;
            return Action::release_permit;
        }
        stage_ = Stage::calling_factory;
        return Action::call_factory;
    }

    /// `wait_timeout` elapsed while queued. `left_queue`: the build took itself out of the permit
    /// queue (else a permit was already handed to it and its grant is on its way).
    Action on_permit_wait_expired(bool left_queue) noexcept {
        if (stage_ != Stage::waiting_for_permit || !left_queue) {
            return Action::none;
        }
        stage_ = Stage::done;
        return Action::finish;  // with pool_exhausted
    }

    /// The factory returned (a client or an error).
    Action on_factory_returned(bool flight_open) noexcept {
        stage_ = Stage::done;
        return flight_open ? Action::finish : Action::discard;
    }

    /// `connect_timeout` elapsed while the factory runs.
    Action on_connect_timeout() noexcept {
        return stage_ == Stage::calling_factory ? Action::finish : Action::none;  // with timeout
    }

    /// The flight was ended by someone else (abandoned, shut down, timed out): stop what runs.
    Action on_ended() noexcept {
        switch (stage_) {
            case Stage::not_started:  // on_start will see the flight ended
                break;
            case Stage::waiting_for_permit:
                return Action::leave_queue;
            case Stage::calling_factory:
                return Action::cancel_factory;
            case Stage::done:
                break;
        }
        return Action::none;
    }

    /// The build left the permit queue after the flight ended.
    void on_left_queue() noexcept { stage_ = Stage::done; }

  private:
    FlightEnd end_ = FlightEnd::none;
    std::size_t waiters_ = 0;
    Stage stage_ = Stage::not_started;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_DECISIONS_HPP
