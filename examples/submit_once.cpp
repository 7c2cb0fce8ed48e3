// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// "Submit once": double-click protection. A user double-clicks "Pay": two requests for the same
// order arrive 5 ms apart (they could reach two different servers). Each takes
// async_try_lock("submit:<order id>", lease) on the request's *resource* — the order — and never
// releases it: the lease is a dedupe window in which the order may be submitted once.
//
// Usage: submit_once [--redis-url URL | --redis-port N]
#include "lock_backend.hpp"

#include <keyedpool/keyedpool.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include <chrono>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> handle_submit(keyedpool::LockService& locks, std::string order_id,
                                    std::string request, int& charged) {
    auto [ec, guard] = co_await locks.async_try_lock("submit:" + order_id, 2min,
                                                     asio::as_tuple(asio::use_awaitable));
    if (ec == keyedpool::ResultCode::lock_busy) {
        fmt::print("  {}: order {} is already being submitted -> rejected as a duplicate\n",
                   request, order_id);
        co_return;
    }
    if (ec) {
        fmt::print("  {}: cannot check for duplicates ({}) -> try again later\n", request,
                   ec.message());
        co_return;
    }
    fmt::print("  {}: charging order {} (fencing token {})\n", request, order_id,
               guard.fencing_token());
    asio::steady_timer payment(co_await asio::this_coro::executor, 50ms);  // the payment call
    co_await payment.async_wait(asio::use_awaitable);
    ++charged;
    // No release: detach() leaves the lock to its 2-minute lease, so a late duplicate is rejected
    // too. (Destroying the guard instead would release it in the background.)
    guard.detach();
    fmt::print("  {}: done\n", request);
}

int main(int argc, char** argv) {
    keyedpool::logger()->set_level(spdlog::level::warn);
    asio::io_context io;
    int charged = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto locks = co_await make_lock_service(argc, argv);
            const std::string order = fmt::format(
                "order-{}", std::chrono::steady_clock::now().time_since_epoch().count());
            auto executor = co_await asio::this_coro::executor;
            fmt::print("double click on {}:\n", order);
            asio::co_spawn(executor, handle_submit(*locks, order, "request 1", charged),
                           asio::detached);
            asio::steady_timer click(executor, 5ms);
            co_await click.async_wait(asio::use_awaitable);
            co_await handle_submit(*locks, order, "request 2", charged);
            asio::steady_timer settle(executor, 100ms);
            co_await settle.async_wait(asio::use_awaitable);
            fmt::print("a third click 100 ms later (within the 2-minute dedupe window):\n");
            co_await handle_submit(*locks, order, "request 3", charged);
        },
        [](std::exception_ptr e) {
            if (e) {
                std::rethrow_exception(e);
            }
        });
    io.run();
    fmt::print("the order was charged {} time(s)\n", charged);
    fmt::print("{}\n", charged == 1 ? "charged exactly once, as it should be"
                                    : "UNEXPECTED: charged more than once");
    return charged == 1 ? 0 : 1;
}
