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
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <memory>
#include <system_error>
#include <utility>

namespace keyedpool::detail {

/// Spawns `operation` on `strand` and completes the user's `handler` through
/// `adapt(handler, exception_ptr, results...)`, keeping the handler's associated executor
/// (defaulting to `fallback`) and allocator, so the handler runs on the user's executor.
///
/// The handler's cancellation slot reaches the coroutine through a signal of our own: the slot's
/// handler posts each emit to `strand`, holding the signal, and the completion clears the slot.
/// Given the user's slot directly, Boost 1.81's `co_spawn` installs a handler that dispatches a raw
/// pointer to its own signal to the spawn's executor; when the emit comes from another executor
/// the pointer is posted, and if the coroutine completes first it points into freed memory (TSan
/// caught it: a pool with a permit source, cancelled gets on a thread pool).
template <typename Strand, typename T, typename Handler, typename Fallback, typename Adapt>
void co_spawn_for_handler(const Strand& strand, boost::asio::awaitable<T> operation,
                          Handler handler, const Fallback& fallback, Adapt adapt) {
    namespace asio = boost::asio;
    auto slot = asio::get_associated_cancellation_slot(handler);
    std::shared_ptr<asio::cancellation_signal> signal;
    if (slot.is_connected()) {
        signal = std::make_shared<asio::cancellation_signal>();
        slot.assign([signal, strand](asio::cancellation_type type) {
            asio::post(strand, [signal, type] { signal->emit(type); });
        });
    }
    auto executor = asio::get_associated_executor(handler, fallback);
    auto allocator = asio::get_associated_allocator(handler);
    auto completion = asio::bind_executor(
        executor, asio::bind_allocator(
                      allocator, [handler = std::move(handler), adapt = std::move(adapt),
                                  forwarding = signal != nullptr](auto&&... results) mutable {
                          if (forwarding) {  // on the handler's executor, where its emits come from
                              asio::get_associated_cancellation_slot(handler).clear();
                          }
                          adapt(std::move(handler), std::forward<decltype(results)>(results)...);
                      }));
    if (signal) {
        auto own_slot = signal->slot();
        asio::co_spawn(strand, std::move(operation),
                       asio::bind_cancellation_slot(own_slot, std::move(completion)));
    } else {
        asio::co_spawn(strand, std::move(operation), std::move(completion));
    }
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
