// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "acquisition_fsm.hpp"

#include <keyedpool/result_code.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <cassert>

namespace keyedpool::lease {

using boost::system::error_code;

clock::duration transient_pause(int failures, clock::duration recheck_interval) {
    constexpr auto first = std::chrono::milliseconds(5);
    constexpr auto longest = std::chrono::milliseconds(250);
    const int doublings = std::clamp(failures - 1, 0, 6);  // 5 << 6 = 320 ms > longest
    return std::min<clock::duration>({first * (1 << doublings), longest, recheck_interval});
}

AcquisitionFsm::AcquisitionFsm(const AcquisitionParams& params, clock::time_point now)
    : params_(params),
      waits_(!params.try_only && params.wait > clock::duration::zero()),
      deadline_(now + params.wait),
      requests_until_(waits_ ? deadline_ : now + params.request_timeout),
      too_slow_(waits_ ? ResultCode::lock_timeout : ResultCode::timeout),
      busy_(params.try_only ? ResultCode::lock_busy : ResultCode::lock_timeout) {}

AcquisitionFsm::Action AcquisitionFsm::start(clock::time_point now) {
    assert(state_ == State::created);
    return attempt(now);
}

AcquisitionFsm::Action AcquisitionFsm::attempt(clock::time_point now, clock::duration late_by) {
    state_ = State::attempting;
    last_sent_ = now;
    on_server_ = true;  // from now on the server may hold something for the token
    ++attempts_;
    Action action;
    action.type = Action::Type::attempt;
    action.until = requests_until_;
    action.queue = waits_;
    action.late_by = late_by;
    return action;
}

AcquisitionFsm::Action AcquisitionFsm::finish(error_code ec, error_code cause) {
    state_ = State::done;
    Action action;
    action.type = Action::Type::done;
    action.ec = ec;
    action.cause = cause;
    action.give_back = on_server_;
    return action;
}

AcquisitionFsm::Action AcquisitionFsm::grant(std::uint64_t fence, clock::time_point held_from,
                                             clock::time_point now) {
    // Fresh enough: valid for at least half the lease, so the watchdog's first renewal (at a
    // third) comes in time.
    if (validity_from(params_.lease, held_from) - now >= params_.lease / 2) {
        state_ = State::done;
        Action action;
        action.type = Action::Type::done;
        action.fence = fence;
        action.held_from = held_from;
        return action;
    }
    const auto late_by = now - held_from;
    if (waits_ && now < deadline_) {
        return attempt(now, late_by);  // the acquire request takes a lease the token holds again
    }
    Action action = finish(too_slow_, waits_ ? error_code(ResultCode::timeout) : error_code{});
    action.late_by = late_by;
    return action;
}

AcquisitionFsm::Action AcquisitionFsm::attempted(const AttemptResult& result,
                                                 clock::time_point now) {
    assert(state_ == State::attempting);
    if (result.ec) {
        if (result.ec == boost::asio::error::operation_aborted) {
            return finish(result.ec);
        }
        if (result.ec == ResultCode::timeout) {  // the request ran out of the time it had
            return finish(too_slow_, waits_ ? result.ec : error_code{});
        }
        // A grant that did not reach enough replicas is reported as it is: the caller asked for
        // durability, and the lease was given back.
        if (!waits_ || !is_transient(result.ec) || result.ec == ResultCode::not_replicated) {
            return finish(result.ec);
        }
        ++failures_;
        // `backoff` is the connection pool refusing to rebuild after the failure it remembers:
        // that failure (connect_failed, unhealthy...) stays the cause.
        if (result.ec != ResultCode::backoff || failures_ == 1) {
            last_failure_ = result.ec;
        }
        if (now >= deadline_) {
            return finish(ResultCode::lock_timeout, last_failure_);
        }
        // The wait is spent to its end: the last pause ends at the deadline.
        state_ = State::waiting;
        Action action;
        action.type = Action::Type::wait;
        action.until =
            std::min(deadline_, now + transient_pause(failures_, params_.recheck_interval));
        return action;
    }
    failures_ = 0;
    last_failure_ = ResultCode::lock_busy;  // from now on, what stood in the way was a holder
    if (result.acquired) {
        return grant(result.fence, last_sent_, now);
    }
    on_server_ = waits_;  // a request that does not wait never queues
    if (!waits_ || now >= deadline_) {
        return finish(busy_, busy_ == ResultCode::lock_timeout ? error_code(ResultCode::lock_busy)
                                                               : error_code{});
    }
    state_ = State::waiting;
    Action action;
    action.type = Action::Type::wait;
    action.for_hand_over = true;
    // A live waiter keeps its queue place by trying at least every recheck_interval; it tries
    // when the holder's lease would end (a holder that stopped renewing hands over by expiry).
    action.until = std::min(deadline_, now + params_.recheck_interval);
    if (result.retry_after) {
        action.until = std::min(action.until, now + *result.retry_after);
    }
    return action;
}

AcquisitionFsm::Action AcquisitionFsm::handed_over(std::uint64_t fence, clock::time_point now) {
    assert(state_ == State::waiting);
    // The release that handed the lease over ran after the last attempt reached the server (that
    // attempt would have found it the caller's), so the lease started after `last_sent_`.
    return grant(fence, last_sent_, now);
}

AcquisitionFsm::Action AcquisitionFsm::woken(clock::time_point now) {
    assert(state_ == State::waiting);
    if (now >= deadline_) {
        return finish(ResultCode::lock_timeout, last_failure_);
    }
    return attempt(now);
}

AcquisitionFsm::Action AcquisitionFsm::cancelled(clock::time_point) {
    assert(state_ != State::done);
    return finish(boost::asio::error::operation_aborted);
}

}  // namespace keyedpool::lease
