// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_CORE_ACQUISITION_FSM_HPP
#define KEYEDPOOL_SRC_LEASE_CORE_ACQUISITION_FSM_HPP

/// \file
/// The decisions of one acquisition of a lease held on a server (a lock, or permits), without
/// I/O: events in (the acquire request's outcome, a hand-over naming the waiter, a wake-up, a
/// cancellation), actions out (send the acquire request before this deadline, wait until, complete
/// with this result), the time passed in with every event. The Redis backend runs it
/// (`lease/redis/contend.hpp`); its unit tests walk every path without an `io_context`.
///
/// The protocol it drives: an attempt either takes the lease (with a fencing token) or finds it
/// busy — when the caller waits, the attempt also keeps the caller's place in the server's FIFO
/// queue, and a release hands the lease directly to the queue's head, naming it on a hand-over
/// channel. A waiter therefore sleeps until a hand-over names it, or until a re-try is due: at
/// the latest every `recheck_interval` (a live waiter keeps its queue place by trying), and when
/// the holder's lease would end (`retry_after`, so a lease that runs out with nobody releasing
/// is taken over within one re-check). Transient failures (a reset connection, a busy server, a
/// connection that cannot be made yet) are retried inside the wait after a short pause that
/// doubles (`transient_pause`); a wait that ends reports `lock_timeout` with the last failure as
/// its cause.

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace keyedpool::lease {

using clock = std::chrono::steady_clock;

/// `valid_until` of a lease (re)started at `sent_at`: minus a drift allowance of 1% + 2 ms.
constexpr clock::time_point validity_from(clock::duration lease, clock::time_point sent_at) {
    return sent_at + lease - (lease / 100 + std::chrono::milliseconds(2));
}

/// What one acquire request found: taken (with a fencing token, for a lock; 0 without), or busy
/// with when to try again at the latest (the holder's remaining lease; none when unknown); or
/// the request failed (`ec`).
struct AttemptResult {
    boost::system::error_code ec;
    bool acquired = false;
    std::uint64_t fence = 0;
    std::optional<clock::duration> retry_after;
};

/// What an acquisition was asked for.
struct AcquisitionParams {
    clock::duration wait{};  ///< how long it may wait; 0 = one attempt
    bool try_only = false;   ///< a try: one attempt, `lock_busy` when taken
    clock::duration lease{};
    clock::duration request_timeout{};   ///< bound on a request that does not wait
    clock::duration recheck_interval{};  ///< a waiter tries again at least this often
};

/// The pause before retrying after the `failures`-th transient failure in a row (1, 2, ...):
/// 5 ms doubling up to 250 ms, and never longer than `recheck_interval`.
clock::duration transient_pause(int failures, clock::duration recheck_interval);

/// What the I/O code does next.
struct AcquisitionAction {
    enum class Type {
        /// Send the acquire request, bounded by `until`; `queue`: it keeps the caller's place in
        /// the server's queue (the caller waits). Report its outcome with `attempted`.
        attempt,
        /// Wait until `until` (then `woken`), or until a hand-over names the waiter
        /// (`handed_over`). `for_hand_over`: the caller is queued on the server: listen for
        /// hand-overs (register, subscribe) and report a wake-up (`woken`) when a hand-over may
        /// have been missed; false: a pause after a transient failure.
        wait,
        /// The acquisition is over: `ec`, or success with `fence` and a lease held since
        /// `held_from` at the latest.
        done,
    };
    Type type = Type::done;
    clock::time_point until{};
    bool queue = false;
    bool for_hand_over = false;
    boost::system::error_code ec;
    /// With `ec` == `lock_timeout` after failures: the last one (else empty).
    boost::system::error_code cause;
    std::uint64_t fence = 0;
    clock::time_point held_from{};
    /// Done without the lease: the server may hold a lease or a queue place for the caller's
    /// token (give it back).
    bool give_back = false;
    /// A grant came too late to be used (less than half the lease left): how late, after it was
    /// asked for (zero: none). The action that follows takes it again, or gives it back.
    clock::duration late_by{};
};

/// One acquisition. Call `start` once, then report each action's outcome; every call returns the
/// next action. Events that do not belong to the current step (a hand-over while an attempt is
/// out) are the I/O code's to hold until the next `wait`.
class AcquisitionFsm {
  public:
    using Action = AcquisitionAction;

    AcquisitionFsm(const AcquisitionParams& params, clock::time_point now);

    /// The first attempt.
    Action start(clock::time_point now);
    /// The acquire request's outcome.
    Action attempted(const AttemptResult& result, clock::time_point now);
    /// A hand-over named the waiter, with `fence`. During a wait.
    Action handed_over(std::uint64_t fence, clock::time_point now);
    /// The wait ended (its time came, or a hand-over may have been missed: try now).
    Action woken(clock::time_point now);
    /// The caller cancelled (at any step before `done`).
    Action cancelled(clock::time_point now);

    /// Whether the acquisition waits (and queues on the server).
    bool waits() const noexcept { return waits_; }
    /// The end of its wait.
    clock::time_point deadline() const noexcept { return deadline_; }
    /// Acquire requests sent so far.
    int attempts() const noexcept { return attempts_; }

  private:
    enum class State { created, attempting, waiting, done };

    Action attempt(clock::time_point now, clock::duration late_by = {});
    Action finish(boost::system::error_code ec, boost::system::error_code cause = {});
    /// A grant of a lease held since `held_from`: success while it is fresh enough, else taken
    /// again within the wait, or given up.
    Action grant(std::uint64_t fence, clock::time_point held_from, clock::time_point now);

    AcquisitionParams params_;
    bool waits_;
    clock::time_point deadline_;
    clock::time_point requests_until_;
    boost::system::error_code too_slow_;  // a request ran out of time
    boost::system::error_code busy_;      // found taken, and the wait is over
    State state_ = State::created;
    clock::time_point last_sent_{};
    bool on_server_ = false;  // the server may hold a lease or a queue place for the token
    int attempts_ = 0;
    int failures_ = 0;  // transient failures in a row
    boost::system::error_code last_failure_;
};

}  // namespace keyedpool::lease

#endif  // KEYEDPOOL_SRC_LEASE_CORE_ACQUISITION_FSM_HPP
