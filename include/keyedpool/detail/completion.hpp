// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_COMPLETION_HPP
#define KEYEDPOOL_DETAIL_COMPLETION_HPP

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <system_error>
#include <utility>

namespace keyedpool::detail {

/// Wraps a user's completion handler into a function object `adapt(handler, results...)` that keeps
/// the handler's associated executor (defaulting to `fallback`), cancellation slot and allocator.
/// Used as the completion of an internal `co_spawn`, so the spawned coroutine observes the user's
/// per-operation cancellation and the handler runs on the user's executor.
template <typename Handler, typename Executor, typename Adapt>
auto bind_handler_associations(Handler handler, const Executor& fallback, Adapt adapt) {
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    auto executor = boost::asio::get_associated_executor(handler, fallback);
    auto allocator = boost::asio::get_associated_allocator(handler);
    return boost::asio::bind_cancellation_slot(
        slot, boost::asio::bind_executor(
                  executor, boost::asio::bind_allocator(allocator, [handler = std::move(handler),
                                                                    adapt = std::move(adapt)](
                                                                       auto&&... results) mutable {
                      adapt(std::move(handler), std::forward<decltype(results)>(results)...);
                  })));
}

/// The error code an exception carries: a Boost or std `system_error` keeps its code; anything else
/// maps to `fallback`.
inline boost::system::error_code error_code_of(const std::exception_ptr& exception,
                                               boost::system::error_code fallback) noexcept {
    try {
        std::rethrow_exception(exception);
    } catch (const boost::system::system_error& e) {
        return e.code();
    } catch (const std::system_error& e) {
        return boost::system::error_code(e.code());
    } catch (...) {
        return fallback;
    }
}

}  // namespace keyedpool::detail

#endif  // KEYEDPOOL_DETAIL_COMPLETION_HPP
