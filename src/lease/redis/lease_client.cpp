// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "lease_client.hpp"

#include <keyedpool/logging.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <stdexcept>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

long long lease_ms(clock::duration lease) {
    return std::chrono::ceil<std::chrono::milliseconds>(lease).count();
}

void validate(const RedisLockServiceOptions& options, const char* name) {
    if (options.cluster.seeds.empty()) {
        validate(options.connection);
    } else {
        validate(options.cluster);
    }
    if (options.key_prefix.empty() || options.key_prefix.find_first_of("{}") != std::string::npos) {
        throw std::invalid_argument(std::string(name) +
                                    ".key_prefix must be non-empty and contain no '{' or '}'");
    }
    if (options.recheck_interval <= clock::duration::zero()) {
        throw std::invalid_argument(std::string(name) + ".recheck_interval must be > 0");
    }
    if (options.request_timeout <= clock::duration::zero()) {
        throw std::invalid_argument(std::string(name) + ".request_timeout must be > 0");
    }
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument(std::string(name) + ".max_resource_bytes must be > 0");
    }
    if (options.min_replicas_acked < 0) {
        throw std::invalid_argument(std::string(name) + ".min_replicas_acked must be >= 0");
    }
    if (options.min_replicas_acked > 0 &&
        options.replicas_ack_timeout < std::chrono::milliseconds(1)) {
        throw std::invalid_argument(std::string(name) +
                                    ".replicas_ack_timeout must be >= 1 ms when min_replicas_acked "
                                    "is set");
    }
}

LeaseClient::LeaseClient(asio::any_io_executor executor, RedisLockServiceOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      time_(options_.time ? options_.time : TimeSource::steady()),
      channels_(std::make_shared<HandOverChannels>(time_, !options_.cluster.seeds.empty())),
      connections_(executor_, options_, time_,
                   [channels = std::weak_ptr<HandOverChannels>(channels_)](Connection& subscriber) {
                       if (auto alive = channels.lock()) {
                           alive->watch(subscriber);
                       }
                   }),
      scripts_(options_) {}

std::shared_ptr<spdlog::logger> LeaseClient::log() const {
    return options_.logger ? options_.logger : logger();
}

lease::AcquisitionParams LeaseClient::acquisition_params(clock::duration wait,
                                                         clock::duration lease,
                                                         bool try_only) const {
    lease::AcquisitionParams params;
    params.wait = wait;
    params.try_only = try_only;
    params.lease = lease;
    params.request_timeout = options_.request_timeout;
    params.recheck_interval = options_.recheck_interval;
    return params;
}

void LeaseClient::log_late_grant(const std::string& resource, std::size_t permits,
                                 clock::duration lease, clock::duration late_by, bool again) const {
    const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(late_by);
    if (permits == 0) {
        log()->warn(
            "keyedpool: the lock on {} came {} ms after it was asked for, with less than half of "
            "its {} ms lease left; {}",
            resource, late.count(), lease_ms(lease), again ? "taking it again" : "giving it back");
    } else {
        log()->warn(
            "keyedpool: {} permit(s) of {} came {} ms after they were asked for, with less than "
            "half of their {} ms lease left; {}",
            permits, resource, late.count(), lease_ms(lease),
            again ? "taking them again" : "giving them back");
    }
}

long long LeaseClient::queue_place_ms() const {
    return std::max<long long>(1000, 3 * lease_ms(options_.recheck_interval));
}

void LeaseClient::give_back(const Script& script, std::vector<std::string> keys,
                            std::vector<std::string> args) {
    // A copy of the script (its SHA read under the lock): the service that owns it may be gone
    // before this background work ends; this client stays alive with it.
    Script own = scripts_.copy(script);
    // On a strand: the request's deadline timer and its command complete on one executor.
    asio::co_spawn(
        asio::make_strand(executor_),
        [self = shared_from_this(), script = std::move(own), keys = std::move(keys),
         args = std::move(args)]() mutable -> asio::awaitable<void> {
            const TimeSource& time = *self->time_;
            const auto give_up_at = time.now() + std::chrono::milliseconds(self->queue_place_ms());
            auto pause = time.make_timer(co_await asio::this_coro::executor);
            auto wait = std::chrono::milliseconds(20);
            for (;;) {
                auto [ec, reply] = co_await self->run(
                    script, keys, args, std::min(self->request_deadline(), give_up_at));
                if (!ec) {
                    co_return;
                }
                if (!is_transient(ec) || time.now() + wait >= give_up_at) {
                    self->log()->debug("keyedpool: giving back an abandoned acquisition failed: {}",
                                       ec.message());
                    co_return;
                }
                pause->expires_after(wait);
                co_await pause->async_wait(asio::as_tuple(asio::use_awaitable));
                wait = std::min(2 * wait, std::chrono::milliseconds(500));
            }
        },
        asio::detached);
}

// ---- one acquisition ---------------------------------------------------------------------

LeaseClient::Acquisition::~Acquisition() {
    if (registered) {
        client.channels_->remove(client.connections_, channel, waiter_);
    }
    if (on_server && !acquired) {
        client.give_back(give_back_script, keys_of(key), {token, channel});
    }
}

const std::shared_ptr<Waiter>& LeaseClient::Acquisition::waiter() {
    if (!waiter_) {
        waiter_ = std::make_shared<Waiter>(executor, *client.time_, token);
    }
    return waiter_;
}

asio::awaitable<error_code> LeaseClient::wait_for_turn(Acquisition& acquisition,
                                                       clock::time_point attempt_sent,
                                                       bool for_hand_over,
                                                       clock::time_point until) {
    Waiter& waiter = *acquisition.waiter();
    if (for_hand_over) {
        if (!acquisition.registered) {
            channels_->add(acquisition.channel, acquisition.waiter());
            acquisition.registered = true;
        }
        // Every time, not only on registering: the subscription may have died since (its
        // connection failed, a failover; on a cluster the server dropped it when the slot moved).
        // A live one costs a cached-connection lookup.
        co_await channels_->subscribe(connections_, acquisition.channel, acquisition.waiter(),
                                      attempt_sent, connections_.io_deadline(until));
    }
    // A wake-up that came while the waiter was not sleeping (during its attempt, or while
    // subscribing): try again at once.
    if (!std::exchange(waiter.notified, false)) {
        waiter.timer->expires_at(until);
        co_await waiter.timer->async_wait(asio::as_tuple(asio::use_awaitable));
        waiter.notified = false;
    }
    const auto cancel = co_await asio::this_coro::cancellation_state;
    if (cancel.cancelled() != asio::cancellation_type::none) {
        co_return asio::error::operation_aborted;
    }
    co_return error_code{};
}

}  // namespace keyedpool::redis::detail
