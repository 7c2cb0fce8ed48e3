// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_FLIGHT_HPP
#define KEYEDPOOL_DETAIL_POOL_FLIGHT_HPP

/// \file
/// A flight: the one build of one key and the gets waiting for its result.

#include <keyedpool/detail/permit_queue.hpp>
#include <keyedpool/detail/pool/connect_deadlines.hpp>
#include <keyedpool/detail/pool/decisions.hpp>
#include <keyedpool/detail/pool/waiter.hpp>
#include <keyedpool/semaphore.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <functional>
#include <memory>
#include <utility>

namespace keyedpool::detail::pool {

/// Shared by the shard's flight map (while open), the build's pending operations, and the permit
/// queue (while queued).
///
/// Guarded by the key's shard lock: `waiters`, `life` (its waiter side). On `executor` (the shard's
/// strand, or the pool's single-threaded executor, which serialises the build's steps): `timer`,
/// `factory_cancel`, `life.stage()`, `holds_permit`, the connect deadline (`DeadlineHook`).
template <typename Key, typename Client, typename Timer>
class Flight final : public PermitQueue::Request,
                     public DeadlineHook<typename Timer::clock_type::time_point>,
                     public std::enable_shared_from_this<Flight<Key, Client, Timer>> {
  public:
    Flight(Key k, const boost::asio::any_io_executor& ex)
        : key(std::move(k)), executor(ex), timer(ex) {}
    Flight(const Flight&) = delete;
    Flight& operator=(const Flight&) = delete;

    /// Links a waiter (owned by the flight from now on). Under the shard lock; the flight is open.
    void add(Waiter<Client>& waiter) {
        waiters.push_back(waiter);
        life.join();
    }

    /// Unlinks a waiter that is still queued (its get was cancelled); returns whether that left the
    /// flight without waiters and so ended it (abandoned). Under the shard lock.
    bool remove(Waiter<Client>& waiter) {
        waiters.erase(waiters.iterator_to(waiter));
        return life.leave();
    }

    /// Whether `waiter` is still queued here (not yet taken by whoever ended the flight).
    bool holds(const Waiter<Client>& waiter) const noexcept {
        return life.open() && waiter.is_linked();
    }

    /// Ends the flight and takes its waiters. Under the shard lock; false (and nothing taken) when
    /// it had ended already.
    bool end(FlightEnd how, WaiterList<Client>& taken) {
        if (!life.end(how)) {
            return false;
        }
        taken.splice(taken.end(), waiters);
        return true;
    }

    /// The permit queue handed this flight a permit: resume the build on its executor. Set by the
    /// build before queueing.
    void granted() noexcept override {
        if (on_granted) {
            on_granted();
        }
    }

    const Key key;
    const boost::asio::any_io_executor executor;  // the shard's strand: the build's steps
    WaiterList<Client> waiters;                   // shard lock
    FlightLifecycle life;                         // waiter side: shard lock; stage: executor
    Timer timer;                                  // the wait for a permit
    boost::asio::cancellation_signal factory_cancel;
    bool holds_permit = false;
    /// With a permit source: the client's fleet permits, from the permit step until the factory
    /// returns (then the client's, or given back).
    PermitGuard fleet_permit;
    /// While queued for a permit: posts the grant to `executor` (holding the flight alive).
    std::function<void()> on_granted;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_FLIGHT_HPP
