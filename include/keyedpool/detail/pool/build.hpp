// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_BUILD_HPP
#define KEYEDPOOL_DETAIL_POOL_BUILD_HPP

/// \file
/// The build of one flight, as steps on the flight's executor (its shard's strand):
///
///     start ─► [max_clients: a permit, waiting at most wait_timeout] ─► factory(key), raced
///     against connect_timeout ─► the engine ends the flight with the result
///
/// No coroutine of its own, no parallel group: the factory runs in a `co_spawn` whose cancellation
/// slot the build holds, and one timer bounds whichever wait is current. Every event
/// (permit granted, timer, factory returned, flight ended by someone else) is a handler on the same
/// strand, so the build's state needs no lock; `FlightLifecycle` says what each event means.

#include <keyedpool/detail/completion.hpp>
#include <keyedpool/detail/pool/decisions.hpp>
#include <keyedpool/result_code.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <exception>
#include <memory>
#include <utility>

namespace keyedpool::detail::pool {

/// `Engine` provides: `factory()`, `options()`, `permits()` (null without `max_clients`),
/// `flight_is_open(flight)`, `end_flight(flight, how, ec, client)` (returns whether the client was
/// cached), `count_built()`, `discard(client)`, `build_done()`, `log_factory_exception(...)`.
template <typename Engine>
class Build {
    using FlightPtr = typename Engine::flight_ptr;
    using EnginePtr = std::shared_ptr<Engine>;
    using client_ptr = typename Engine::client_ptr;
    using Action = FlightLifecycle::Action;

  public:
    /// Starts the build of a new flight (from any thread; its first step is posted).
    static void start(EnginePtr engine, FlightPtr flight) {
        auto& executor = flight->executor;
        boost::asio::post(executor, [engine = std::move(engine), flight = std::move(flight)] {
            begin(engine, flight);
        });
    }

    /// Someone else ended the flight (its last waiter left, or shutdown): stop what runs.
    static void stop(EnginePtr engine, FlightPtr flight) {
        auto& executor = flight->executor;
        boost::asio::post(executor, [engine = std::move(engine), flight = std::move(flight)] {
            act(engine, flight, flight->life.on_ended());
        });
    }

  private:
    static void begin(const EnginePtr& engine, const FlightPtr& flight) {
        auto* permits = engine->permits();
        switch (flight->life.on_start(permits != nullptr, engine->flight_is_open(*flight))) {
            case Action::call_factory:
                call_factory(engine, flight);
                return;
            case Action::wait_for_permit:
                break;
            default:  // ended before it began
                engine->build_done();
                return;
        }
        // Set before queueing: once queued, a release on another thread may grant at once.
        flight->on_granted = [engine, flight] {
            boost::asio::post(flight->executor,
                              [engine, flight] { permit_granted(engine, flight); });
        };
        if (permits->acquire_or_queue(*flight)) {
            flight->on_granted = nullptr;
            permit_granted(engine, flight);
            return;
        }
        const auto wait = engine->options().wait_timeout;
        if (wait.count() == 0) {
            permit_wait_expired(engine, flight);
            return;
        }
        flight->timer.expires_after(wait);
        flight->timer.async_wait([engine, flight](boost::system::error_code ec) {
            if (!ec) {
                permit_wait_expired(engine, flight);
            }
        });
    }

    static void permit_granted(const EnginePtr& engine, const FlightPtr& flight) {
        flight->timer.cancel();
        flight->on_granted = nullptr;  // breaks the flight's reference to itself
        flight->holds_permit = true;
        act(engine, flight, flight->life.on_permit_granted(engine->flight_is_open(*flight)));
    }

    static void permit_wait_expired(const EnginePtr& engine, const FlightPtr& flight) {
        const bool left = engine->permits()->leave(*flight);
        if (left) {
            flight->on_granted = nullptr;
        }
        if (flight->life.on_permit_wait_expired(left) == Action::finish) {
            engine->end_flight(*flight, FlightEnd::failed, ResultCode::pool_exhausted, nullptr);
            engine->build_done();
        }
    }

    static void call_factory(const EnginePtr& engine, const FlightPtr& flight) {
        namespace asio = boost::asio;
        const auto timeout = engine->options().connect_timeout;
        if (timeout.count() > 0) {
            flight->timer.expires_after(timeout);
            flight->timer.async_wait([engine, flight](boost::system::error_code ec) {
                if (!ec) {
                    act(engine, flight, flight->life.on_connect_timeout(), ResultCode::timeout);
                }
            });
        }
        engine->log_build_start(flight->key);
        try {
            asio::co_spawn(flight->executor, engine->factory()(flight->key),
                           asio::bind_cancellation_slot(
                               flight->factory_cancel.slot(),
                               [engine, flight](std::exception_ptr e, client_ptr client) {
                                   factory_returned(engine, flight, e, std::move(client));
                               }));
        } catch (...) {  // the factory threw before returning its awaitable, or out of memory
            factory_returned(engine, flight, std::current_exception(), nullptr);
        }
    }

    static void factory_returned(const EnginePtr& engine, const FlightPtr& flight,
                                 const std::exception_ptr& exception, client_ptr client) {
        flight->timer.cancel();
        FactoryReturn r;
        if (client) {
            engine->count_built();
            r.made_client = true;
            r.healthy = engine->is_healthy(*client);
        }
        if (exception) {
            r.thrown = error_code_of(exception, ResultCode::connect_failed);
            engine->log_factory_exception(flight->key, exception);
        }
        const auto ec = classify_factory_return(r);
        bool cached = false;
        if (flight->life.on_factory_returned(engine->flight_is_open(*flight)) == Action::finish) {
            cached = engine->end_flight(*flight, ec ? FlightEnd::failed : FlightEnd::built, ec,
                                        ec ? nullptr : client);
        }
        if (!cached && client) {
            engine->discard(std::move(client), ec ? "build failed" : "build ended without it");
        }
        if (flight->holds_permit && !cached) {
            engine->permits()->release();
        }
        flight->holds_permit = false;
        engine->build_done();
    }

    /// Does what the lifecycle said. `ec` is the result when the action ends the flight.
    static void act(const EnginePtr& engine, const FlightPtr& flight, Action action,
                    boost::system::error_code ec = {}) {
        switch (action) {
            case Action::call_factory:
                call_factory(engine, flight);
                break;
            case Action::release_permit:
                flight->holds_permit = false;
                engine->permits()->release();
                engine->build_done();
                break;
            case Action::finish:  // connect timeout: end the flight, then stop the factory
                engine->end_flight(*flight, FlightEnd::timed_out, ec, nullptr);
                flight->factory_cancel.emit(boost::asio::cancellation_type::terminal);
                break;
            case Action::cancel_factory:
                flight->timer.cancel();
                flight->factory_cancel.emit(boost::asio::cancellation_type::terminal);
                break;
            case Action::leave_queue:
                flight->timer.cancel();
                if (engine->permits()->leave(*flight)) {
                    flight->on_granted = nullptr;
                    flight->life.on_left_queue();
                    engine->build_done();
                }  // else a permit is on its way: permit_granted sees the flight ended
                break;
            default:
                break;
        }
    }
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_BUILD_HPP
