// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "hand_over_channels.hpp"

#include <boost/asio/post.hpp>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// Wakes a waiter (on its own executor): to try again, or, `handed`, because a hand-over named it
/// (with the fencing token, for a lock).
void wake(const std::shared_ptr<Waiter>& waiter, bool handed = false,
          std::uint64_t handed_fence = 0) {
    asio::post(waiter->executor, [waiter, handed, handed_fence] {
        waiter->notified = true;
        if (handed) {
            waiter->handed = true;
            waiter->handed_fence = handed_fence;
        }
        waiter->timer->cancel();
    });
}

void wake_to_retry(const std::shared_ptr<Waiter>& waiter) {
    wake(waiter);
}

}  // namespace

void HandOverChannels::add(const std::string& channel, const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(mutex_);
    registry_.add(channel, waiter);
}

void HandOverChannels::remove(LeaseConnections& connections, const std::string& channel,
                              const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(mutex_);
    if (auto dropped = registry_.remove(channel, waiter)) {
        // Sent under the mutex, so SUBSCRIBE/UNSUBSCRIBE reach the server in decision order.
        if (auto subscriber = connections.try_connection(dropped->route);
            subscriber && subscriber.get() == dropped->on) {
            subscriber->async_exec(
                command(sharded_ ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", dropped->channel),
                [](error_code, Reply) {});
        }
    }
}

asio::awaitable<void> HandOverChannels::subscribe(LeaseConnections& connections,
                                                  const std::string& channel,
                                                  std::shared_ptr<Waiter> waiter,
                                                  clock::time_point attempt_sent,
                                                  clock::time_point deadline) {
    const auto role = co_await connections.subscriber_for(channel, deadline);
    if (!role) {
        co_return;  // no map for the channel's slot: the re-checks still find the lease free
    }
    auto [ec, subscriber] = co_await connections.connection(*role, deadline);
    if (ec) {
        co_return;  // no subscriber: the re-checks still find the lease free
    }
    std::lock_guard lock(mutex_);
    const Connection* on = subscriber.get();
    const auto step = registry_.subscribe(channel, waiter->token, on, *role, attempt_sent);
    waiter->notified = waiter->notified || step.try_now;
    if (!step.send_subscribe) {
        co_return;
    }
    // Sent under the mutex, so SUBSCRIBE/UNSUBSCRIBE reach the server in decision order.
    std::weak_ptr<HandOverChannels> weak = weak_from_this();
    subscriber->async_exec(command(sharded_ ? "SSUBSCRIBE" : "SUBSCRIBE", channel),
                           [weak, channel, on](error_code sub_ec, Reply) {
                               if (auto self = weak.lock()) {
                                   self->subscribed(channel, on, !sub_ec);
                               }
                           });
}

void HandOverChannels::subscribed(const std::string& channel, const Connection* on, bool ok) {
    std::lock_guard lock(mutex_);
    registry_.subscribed(channel, on, ok, time_->now(), wake_to_retry);
}

void HandOverChannels::closed(const Connection* on) {
    std::lock_guard lock(mutex_);
    registry_.subscriber_closed(on, wake_to_retry);
}

void HandOverChannels::watch(Connection& subscriber) {
    std::weak_ptr<HandOverChannels> weak = weak_from_this();
    const Connection* on = &subscriber;
    subscriber.set_push_handler([weak, on](Reply message) {
        if (auto self = weak.lock()) {
            self->on_message(message, on);
        }
    });
    subscriber.async_wait_closed([weak, on](error_code) {
        if (auto self = weak.lock()) {
            self->closed(on);
        }
    });
}

// On the subscriber connection's strand.
void HandOverChannels::on_message(const Reply& message, const Connection* on) {
    if (message.elements().size() < 3) {
        return;
    }
    const std::string& kind = message.elements()[0].text();
    const std::string& channel = message.elements()[1].text();
    std::lock_guard lock(mutex_);
    if (kind == "sunsubscribe") {
        // The server dropped a sharded subscription (the channel's slot moved to another shard).
        registry_.dropped_by_server(channel, on, wake_to_retry);
        return;
    }
    if (kind != "message" && kind != "smessage") {
        return;
    }
    // ["message" (cluster: "smessage"), channel, "<token>[ <fencing token>]"]: a lease was
    // handed to that token.
    const HandOver hand_over = parse_hand_over(message.elements()[2].text());
    registry_.handed_over(channel, hand_over.token, [&](const std::shared_ptr<Waiter>& waiter) {
        wake(waiter, true, hand_over.fence);
    });
}

}  // namespace keyedpool::redis::detail
