// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_WITH_LOCK_HPP
#define KEYEDPOOL_WITH_LOCK_HPP

/// \file
/// `with_lock`: run an awaitable under a lock and always release it.

#include <keyedpool/lock_guard.hpp>
#include <keyedpool/logging.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace keyedpool {

namespace detail {
template <typename T>
struct awaitable_value;
template <typename T, typename Executor>
struct awaitable_value<boost::asio::awaitable<T, Executor>> {
    using type = T;
};

template <typename Fn>
auto invoke_protected(Fn& fn, const LockGuard& guard) {
    if constexpr (std::is_invocable_v<Fn&, const LockGuard&>) {
        return fn(guard);
    } else {
        return fn();
    }
}

template <typename Fn>
using protected_result_t = typename awaitable_value<decltype(invoke_protected(
    std::declval<Fn&>(), std::declval<const LockGuard&>()))>::type;

/// `fn`'s result as a value: `std::monostate` stands for `void`, so one code path serves both.
template <typename Fn>
using stored_result_t = std::conditional_t<std::is_void_v<protected_result_t<Fn>>, std::monostate,
                                           protected_result_t<Fn>>;

template <typename Fn>
boost::asio::awaitable<stored_result_t<Fn>> run_protected(Fn& fn, const LockGuard& guard) {
    if constexpr (std::is_void_v<protected_result_t<Fn>>) {
        co_await invoke_protected(fn, guard);
        co_return std::monostate{};
    } else {
        co_return co_await invoke_protected(fn, guard);
    }
}
}  // namespace detail

/// Acquires `resource` with `options`, runs `fn` (`fn(const LockGuard&)` or `fn()`, returning an
/// `awaitable<R>`) while holding it, releases it whatever happens, and returns `fn`'s result.
///
/// - If the lock cannot be acquired, throws `boost::system::system_error` with the service's code
///   (`ResultCode::lock_timeout`, ...); `fn` does not run.
/// - If the lock is lost while `fn` runs (lease ended, renewal refused), `fn` is cancelled (a
///   terminal per-operation cancellation reaches the operation it awaits) and `with_lock` throws
///   `system_error(ResultCode::lock_lost)` once it has finished: do not trust its effects; pass
///   `guard.fencing_token()` to the store so it can refuse a stale writer.
/// - If `fn` throws, the lock is released and the exception rethrown.
template <typename Fn>
auto with_lock(LockService& service, std::string resource, LockOptions options, Fn fn)
    -> boost::asio::awaitable<detail::protected_result_t<Fn>> {
    namespace asio = boost::asio;
    auto [lock_ec, guard] = co_await service.async_lock(std::move(resource), options,
                                                        asio::as_tuple(asio::use_awaitable));
    if (lock_ec) {
        throw boost::system::system_error(lock_ec);
    }
    auto executor = co_await asio::this_coro::executor;
    auto [order, failure, result, lost_ec] =
        co_await asio::experimental::make_parallel_group(
            asio::co_spawn(executor, detail::run_protected(fn, guard), asio::deferred),
            guard.async_wait_lost(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    const bool lost_first = order[0] == 1 && !lost_ec;

    const std::string name = guard.resource();
    auto [release_ec] = co_await guard.async_release(asio::as_tuple(asio::use_awaitable));
    if (release_ec && release_ec != ResultCode::lock_lost) {
        logger()->warn("keyedpool: releasing the lock on {} failed: {}", name,
                       release_ec.message());
    }
    if (lost_first) {
        throw boost::system::system_error(ResultCode::lock_lost);
    }
    if (failure) {
        std::rethrow_exception(failure);
    }
    if constexpr (!std::is_void_v<detail::protected_result_t<Fn>>) {
        co_return std::move(result);
    }
}

}  // namespace keyedpool

#endif  // KEYEDPOOL_WITH_LOCK_HPP
