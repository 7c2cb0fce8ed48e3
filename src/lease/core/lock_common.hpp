// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. What both lock backends do the same way: queue locally, build the held lock, run the
// operation for the caller's handler.
#ifndef KEYEDPOOL_SRC_LEASE_CORE_LOCK_COMMON_HPP
#define KEYEDPOOL_SRC_LEASE_CORE_LOCK_COMMON_HPP

#include <keyedpool/detail/completion.hpp>
#include <keyedpool/keyed_mutex.hpp>
#include <keyedpool/lock_guard.hpp>

#include "lock_state.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>

#include <memory>
#include <string>
#include <utility>

namespace keyedpool::detail {

using LocalQueue = KeyedMutex<std::string>;
using Acquired = std::pair<boost::system::error_code, LockGuard>;

/// Why a wait raced against its deadline ended without what it waited for: the caller's
/// cancellation (`operation_aborted`) or the deadline (`lock_timeout`).
inline boost::asio::awaitable<boost::system::error_code> why_the_wait_ended() {
    namespace asio = boost::asio;
    const auto cancellation = co_await asio::this_coro::cancellation_state;
    co_return cancellation.cancelled() != asio::cancellation_type::none
        ? boost::system::error_code(asio::error::operation_aborted)
        : boost::system::error_code(ResultCode::lock_timeout);
}

/// Takes the resource's place in the in-process FIFO queue: one attempt when `try_only` or
/// `options.wait` is 0 (→ `lock_busy` / `lock_timeout`), else waits until `deadline` on `time`
/// (→ `lock_timeout`, or `operation_aborted` when the caller cancelled). Runs on a strand: the
/// lock wait and the timer complete there, so the group's cancellation of the loser never races
/// the winner's completion.
inline boost::asio::awaitable<std::pair<boost::system::error_code, LocalQueue::Guard>>
queue_locally(LocalQueue& queue, const std::string& resource, const LockOptions& options,
              bool try_only, std::chrono::steady_clock::time_point deadline,
              const TimeSource& time) {
    namespace asio = boost::asio;
    using Result = std::pair<boost::system::error_code, LocalQueue::Guard>;
    if (try_only || options.wait == std::chrono::steady_clock::duration::zero()) {
        auto guard = queue.try_lock(resource);  // no handler hop: the Redis request follows at once
        if (!guard) {
            co_return Result{try_only ? ResultCode::lock_busy : ResultCode::lock_timeout,
                             LocalQueue::Guard{}};
        }
        co_return Result{boost::system::error_code{}, std::move(guard)};
    }
    // The lock wait bound to this strand: unbound it would complete on the queue's executor,
    // racing the group's cancellation emitted here when the timer wins.
    auto strand = co_await asio::this_coro::executor;
    auto timer = time.make_timer(strand);
    timer->expires_at(deadline);
    auto [order, lock_ec, guard, timer_ec] =
        co_await asio::experimental::make_parallel_group(
            asio::bind_executor(strand, queue.async_lock(resource, asio::deferred)),
            timer->async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    (void)order;
    (void)timer_ec;
    if (lock_ec) {  // the timer won or we were cancelled (a lock handed over meanwhile was passed
                    // on)
        co_return Result{co_await why_the_wait_ended(), LocalQueue::Guard{}};
    }
    co_return Result{boost::system::error_code{}, std::move(guard)};
}

/// The guard of a lease just taken (a lock, or permits); its lease (and watchdog) start from
/// `sent_at`. `local_hold` is the backend's in-process hold, dropped when the lease ends (released,
/// lost, or run out).
inline LockGuard make_held_lease(const boost::asio::any_io_executor& executor,
                                 std::shared_ptr<LockBackend> backend, std::string resource,
                                 std::string token, std::uint64_t fencing_token,
                                 std::chrono::steady_clock::duration lease, bool auto_renew,
                                 std::shared_ptr<void> local_hold,
                                 std::chrono::steady_clock::time_point sent_at,
                                 std::shared_ptr<const TimeSource> time,
                                 std::shared_ptr<spdlog::logger> log) {
    auto state =
        std::make_shared<LockState>(executor, std::move(backend), std::move(time), std::move(log));
    state->resource = std::move(resource);
    state->token = std::move(token);
    state->fencing_token = fencing_token;
    state->lease = lease;
    state->auto_renew = auto_renew;
    state->local_hold = std::move(local_hold);
    state->start(sent_at);
    return LockGuard{std::move(state)};
}

/// The guard of a lock just acquired, holding its place in the in-process queue.
inline LockGuard make_held_lock(const boost::asio::any_io_executor& executor,
                                std::shared_ptr<LockBackend> backend, std::string resource,
                                std::string token, std::uint64_t fencing_token,
                                const LockOptions& options, LocalQueue::Guard local_hold,
                                std::chrono::steady_clock::time_point sent_at,
                                std::shared_ptr<const TimeSource> time,
                                std::shared_ptr<spdlog::logger> log) {
    return make_held_lease(executor, std::move(backend), std::move(resource), std::move(token),
                           fencing_token, options.lease, options.auto_renew,
                           std::make_shared<LocalQueue::Guard>(std::move(local_hold)), sent_at,
                           std::move(time), std::move(log));
}

/// Runs a lock (or permit) operation on a strand of its own and completes `handler` with its
/// result — a pair of error code and guard —, keeping the handler's executor, allocator and
/// cancellation slot. `diagnostics` (null, or what the operation filled) gets the cause of a
/// `lock_busy` / `lock_timeout` the operation left unexplained: the lease stayed held (an
/// in-process wait, or this process's own queue).
template <typename Result, typename Handler>
void spawn_lock_operation(const boost::asio::any_io_executor& executor,
                          boost::asio::awaitable<Result> operation, Handler handler,
                          LockDiagnostics* diagnostics = nullptr) {
    co_spawn_for_handler(boost::asio::make_strand(executor), std::move(operation),
                         std::move(handler), executor,
                         [diagnostics](auto user_handler, std::exception_ptr e, Result result) {
                             if (e) {
                                 result.first = error_code_of(e, ResultCode::io_error);
                             }
                             if (diagnostics && !diagnostics->cause &&
                                 (result.first == ResultCode::lock_timeout ||
                                  result.first == ResultCode::lock_busy)) {
                                 diagnostics->cause = ResultCode::lock_busy;
                             }
                             std::move(user_handler)(result.first, std::move(result.second));
                         });
}

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_SRC_LEASE_CORE_LOCK_COMMON_HPP
