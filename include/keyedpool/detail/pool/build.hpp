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
/// The flight's executor is its shard's strand (default) or the pool's executor.
///
/// One coroutine per factory call and no parallel group: the coroutine's cancellation slot is the
/// flight's; the permit wait has the flight's timer, the connect timeout a place in the shard's
/// deadline list (connect_deadlines.hpp), one timer for all its builds. Every event
/// (permit granted, timer, factory returned, flight ended by someone else) is a handler on the
/// flight's executor — the shard's strand, or with `build_on_strand = false` the pool's executor
/// run by one thread — so the build's state needs no lock; `FlightLifecycle` says what each event
/// means.

#include <keyedpool/detail/completion.hpp>
#include <keyedpool/detail/pool/decisions.hpp>
#include <keyedpool/result_code.hpp>
#include <keyedpool/semaphore.hpp>

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
    /// Starts the build of a new flight (from any thread). Without `max_clients` the factory
    /// coroutine is spawned at once on the flight's executor; with it, the first step (queueing for
    /// a permit) is posted there.
    static void start(EnginePtr engine, FlightPtr flight) {
        if (engine->permits() == nullptr) {
            spawn_factory(std::move(engine), std::move(flight), /*after_permit=*/false);
            return;
        }
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
    /// Queues for a permit (on the flight's executor).
    static void begin(const EnginePtr& engine, const FlightPtr& flight) {
        auto* permits = engine->permits();
        if (flight->life.on_start(true, engine->flight_is_open(*flight)) !=
            Action::wait_for_permit) {
            engine->build_done();  // ended before it began
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

    /// The factory call, as one coroutine on the flight's executor. Its cancellation slot is the
    /// flight's `factory_cancel`: emitting it (always on that executor) cancels the factory.
    static void spawn_factory(EnginePtr engine, FlightPtr flight, bool after_permit) {
        auto& executor = flight->executor;
        auto slot = flight->factory_cancel.slot();
        try {
            boost::asio::co_spawn(executor,
                                  engine->fleet() != nullptr
                                      ? call_factory_with_fleet_permit(engine, flight, after_permit)
                                      : call_factory(engine, flight, after_permit),
                                  boost::asio::bind_cancellation_slot(slot, Spawned{flight}));
        } catch (...) {  // out of memory: the build ends as a failed one
            boost::asio::post(executor, [engine, flight, error = std::current_exception()] {
                flight->life.on_start(false, true);
                factory_returned(engine, flight, error, nullptr);
            });
        }
    }

    /// The spawn's completion. It owns the flight, whose `factory_cancel` holds the spawned
    /// coroutine's cancellation state: the flight must outlive the whole spawn, which goes on
    /// after `call_factory` returns (it hops once more before completing).
    struct Spawned {
        FlightPtr flight;
        void operator()(std::exception_ptr) const noexcept {}  // call_factory does not throw
    };

    static boost::asio::awaitable<void> call_factory(EnginePtr engine, FlightPtr flight,
                                                     bool after_permit) {
        if (!after_permit &&
            flight->life.on_start(false, engine->flight_is_open(*flight)) != Action::call_factory) {
            engine->build_done();  // its only waiter left before it began
            co_return;
        }
        const auto timeout = engine->options().connect_timeout;
        if (timeout.count() > 0) {
            using Clock = typename Engine::clock;
            engine->connect_deadlines(*flight).add(
                *flight, Clock::now() + timeout, [engine](typename Engine::FlightType& expired) {
                    act(engine, expired.shared_from_this(), expired.life.on_connect_timeout(),
                        ResultCode::timeout);
                });
        }
        engine->log_build_start(flight->key);
        client_ptr client;
        std::exception_ptr exception;
        try {
            client = co_await engine->factory()(flight->key);
        } catch (...) {
            exception = std::current_exception();
        }
        factory_returned(engine, flight, exception, std::move(client));
    }

    /// With a permit source: the client's fleet permits (bounded by wait_timeout, cancelled with
    /// the build), kept by the flight, then the factory call (`connect_timeout` bounds the factory
    /// only). A coroutine of its own, so a pool without a permit source pays nothing for it.
    static boost::asio::awaitable<void> call_factory_with_fleet_permit(EnginePtr engine,
                                                                       FlightPtr flight,
                                                                       bool after_permit) {
        if (!after_permit &&
            flight->life.on_start(false, engine->flight_is_open(*flight)) != Action::call_factory) {
            engine->build_done();
            co_return;
        }
        auto [ec, permit] = co_await engine->acquire_fleet_permit(flight->key);
        if (!ec && !engine->flight_is_open(*flight)) {
            ec = boost::asio::error::operation_aborted;  // every get left meanwhile
        }
        if (ec) {
            factory_returned(engine, flight, nullptr, nullptr, ec);  // the permit goes back
            co_return;
        }
        flight->fleet_permit = std::move(permit);
        co_await call_factory(engine, flight, /*after_permit=*/true);  // started above
    }

    /// The factory returned (or threw), or the build ended before calling it (`permit_error`: the
    /// permit source gave none). The flight's fleet permit goes to the client before it is cached
    /// (released with it), or back at once.
    static void factory_returned(const EnginePtr& engine, const FlightPtr& flight,
                                 const std::exception_ptr& exception, client_ptr client,
                                 boost::system::error_code permit_error = {}) {
        engine->connect_deadlines(*flight).remove(*flight, engine);
        if (engine->fleet() != nullptr) {
            PermitGuard permit = std::move(flight->fleet_permit);
            if (client) {
                engine->hold_fleet_permit(flight->key, client, std::move(permit));
            }
        }
        FactoryReturn r;
        r.thrown = permit_error;
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
            case Action::call_factory:  // the permit came
                spawn_factory(engine, flight, /*after_permit=*/true);
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
