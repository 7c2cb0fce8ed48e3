// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_CONTEND_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_CONTEND_HPP

/// \file
/// The loop both Redis services run for an acquisition: the I/O of `lease::AcquisitionFsm`'s
/// decisions — send the acquire script, wait for a hand-over or a re-try, complete.

#include <keyedpool/redis/lock_service.hpp>

#include "../core/acquisition_fsm.hpp"
#include "lease_client.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

namespace keyedpool::redis::detail {

/// Runs one acquisition that started at `started`. `try_once(until, queue)` sends the acquire
/// script and returns its `lease::AttemptResult`; `grant(fence, held_from)` turns a lease held
/// since `held_from` into the result. `Result` is a pair of error code and guard. `permits` 0: a
/// lock (for the log). `diagnostics` (null, or the caller's) gets the cause and the attempts.
template <typename Result, typename TryOnce, typename Grant>
boost::asio::awaitable<Result> contend(LeaseClient::Acquisition& acquisition,
                                       const lease::AcquisitionParams& params,
                                       clock::time_point started, const std::string& resource,
                                       std::size_t permits, LockDiagnostics* diagnostics,
                                       TryOnce try_once, Grant grant) {
    using Guard = typename Result::second_type;
    using Type = lease::AcquisitionAction::Type;
    LeaseClient& client = acquisition.client;
    lease::AcquisitionFsm fsm(params, started);
    lease::AcquisitionAction action = fsm.start(client.time()->now());
    clock::time_point sent_at{};
    for (;;) {
        if (action.late_by > clock::duration::zero()) {
            client.log_late_grant(resource, permits, params.lease, action.late_by,
                                  action.type == Type::attempt);
        }
        switch (action.type) {
            case Type::attempt: {
                sent_at = client.time()->now();
                acquisition.on_server = true;
                const lease::AttemptResult result = co_await try_once(action.until, action.queue);
                action = fsm.attempted(result, client.time()->now());
                break;
            }
            case Type::wait: {
                Waiter& waiter = *acquisition.waiter();
                // A hand-over may have named the waiter while its attempt was out.
                if (!waiter.handed) {
                    if (co_await client.wait_for_turn(acquisition, sent_at, action.for_hand_over,
                                                      action.until)) {
                        action = fsm.cancelled(client.time()->now());
                        break;
                    }
                }
                action = std::exchange(waiter.handed, false)
                             ? fsm.handed_over(waiter.handed_fence, client.time()->now())
                             : fsm.woken(client.time()->now());
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
                        client.log()->debug(
                            "keyedpool: acquiring {} ended with {} (last cause: {})", resource,
                            action.ec.message(), action.cause.message());
                    }
                    co_return Result{action.ec, Guard{}};
                }
                acquisition.acquired = true;
                co_return grant(action.fence, action.held_from);
        }
    }
}

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_CONTEND_HPP
