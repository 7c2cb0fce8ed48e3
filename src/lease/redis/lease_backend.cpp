// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "lease_backend.hpp"

#include <algorithm>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

/// A renew or release script's reply: 1 when the token held the lease.
error_code owner_reply(const error_code& ec, const Reply& reply) {
    if (ec) {
        return ec;
    }
    return reply.as_integer() == 1 ? error_code{} : error_code(ResultCode::not_lock_owner);
}

}  // namespace

asio::awaitable<lease::AttemptResult> RedisLeaseBackend::attempt(
    const LeaseClient::Acquisition& acquisition, std::vector<std::string> args,
    clock::time_point until) {
    auto [ec, reply] = co_await redis_->run(layout_.acquire, layout_.keys_of(acquisition.key),
                                            std::move(args), until);
    co_return read_attempt(ec, reply);
}

asio::awaitable<error_code> RedisLeaseBackend::renew(keyedpool::detail::LockState& state) {
    std::vector<std::string> args{state.token, std::to_string(lease_ms(state.lease))};
    // A renewal answered after the lease ended is of no use: the lease is lost by then.
    auto [ec, reply] = co_await redis_->run(
        layout_.renew, layout_.renew_keys_of(key(state.resource)), std::move(args),
        std::min(redis_->request_deadline(), state.valid_until));
    co_return owner_reply(ec, reply);
}

asio::awaitable<error_code> RedisLeaseBackend::release(keyedpool::detail::LockState& state) {
    std::vector<std::string> args{state.token, channel(state.resource)};
    auto [ec, reply] = co_await redis_->run(layout_.release, layout_.keys_of(key(state.resource)),
                                            std::move(args), redis_->request_deadline());
    co_return owner_reply(ec, reply);
}

}  // namespace keyedpool::redis::detail
