// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The demos' stand-in for a database with a hard connection limit (Aerospike CE,
// Redis maxclients) and a slow handshake, on 127.0.0.1.
#ifndef KEYEDPOOL_EXAMPLES_FAKE_DATABASE_HPP
#define KEYEDPOOL_EXAMPLES_FAKE_DATABASE_HPP

#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>

namespace asio = boost::asio;
using asio::ip::tcp;

/// Accepts connections on 127.0.0.1, waits `accept_delay` (a slow handshake), then greets with
/// "OK" or, past `max_connections` open connections, "ERR max number of clients reached" and hangs
/// up. Keeps each accepted connection open until the client closes it.
class FakeDatabase {
  public:
    FakeDatabase(boost::asio::io_context& io, std::chrono::milliseconds accept_delay,
                 int max_connections)
        : acceptor_(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)),
          delay_(accept_delay),
          max_connections_(max_connections) {
        asio::co_spawn(io, accept_loop(), asio::detached);
    }

    tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
    int open() const { return open_; }
    int peak() const { return peak_; }
    int accepted() const { return accepted_; }
    int rejected() const { return rejected_; }
    void reset_counters() { peak_ = open_, accepted_ = 0, rejected_ = 0; }
    void stop() { acceptor_.close(); }

  private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] =
                co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            co_spawn(acceptor_.get_executor(), session(std::move(socket)), asio::detached);
        }
    }

    asio::awaitable<void> session(tcp::socket socket) {
        ++accepted_;
        asio::steady_timer handshake(socket.get_executor(), delay_);
        co_await handshake.async_wait(asio::as_tuple(asio::use_awaitable));
        if (open_ >= max_connections_) {
            ++rejected_;
            co_await asio::async_write(socket,
                                       asio::buffer("ERR max number of clients reached\n", 34),
                                       asio::as_tuple(asio::use_awaitable));
            co_return;
        }
        ++open_;
        peak_ = std::max(peak_, open_);
        co_await asio::async_write(socket, asio::buffer("OK\n", 3),
                                   asio::as_tuple(asio::use_awaitable));
        char byte;
        co_await socket.async_read_some(asio::buffer(&byte, 1),
                                        asio::as_tuple(asio::use_awaitable));
        --open_;  // the client closed the connection
    }

    tcp::acceptor acceptor_;
    std::chrono::milliseconds delay_;
    int max_connections_;
    int open_ = 0, peak_ = 0, accepted_ = 0, rejected_ = 0;
};

#endif  // KEYEDPOOL_EXAMPLES_FAKE_DATABASE_HPP
