// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_TRANSPORT_HPP
#define KEYEDPOOL_SRC_REDIS_TRANSPORT_HPP

/// \file
/// `Transport`: the byte stream under a `Connection` — TCP, a unix domain socket, or TLS over TCP.
/// The connection's pipelining, limits and errors are one implementation above it.

#include <keyedpool/redis/connection.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace keyedpool::redis::detail {

/// Where a connection goes, for logs and error text: "127.0.0.1:6379", "[::1]:6379",
/// "unix:/run/redis.sock", "tls 127.0.0.1:6380". Never holds credentials.
std::string describe_endpoint(const ConnectionConfig& config);
/// The same for a host and port (a sentinel, a primary it named).
std::string describe_endpoint(const Endpoint& endpoint, bool tls = false);

class Transport {
  public:
    using executor_type = boost::asio::strand<boost::asio::any_io_executor>;
    using Tcp = boost::asio::ip::tcp::socket;
    using Unix = boost::asio::local::stream_protocol::socket;
    using Tls = boost::asio::ssl::stream<Tcp>;

    /// An unconnected TCP socket until `async_connect` picks the kind `config` asks for.
    explicit Transport(executor_type executor)
        : executor_(std::move(executor)), stream_(std::in_place_type<Tcp>, executor_) {}

    /// Connects (TCP: resolve + connect, TCP_NODELAY; unix: the socket path; TLS: TCP, then the
    /// handshake with the configured verification) and makes the socket non-blocking.
    /// Throws `boost::system::system_error`: network errors with their own code, a failed TLS
    /// setup or handshake with `ResultCode::tls_failed` (the cause in its text).
    boost::asio::awaitable<void> async_connect(const ConnectionConfig& config);

    /// Writes what the socket takes now without blocking; 0 when it would block, and always 0 on
    /// TLS (the TLS engine must own every write, so writes go through `async_write`).
    std::size_t write_now(boost::asio::const_buffer buffer, boost::system::error_code& ec);

    template <typename Buffers, typename Handler>
    void async_write(const Buffers& buffers, Handler&& handler) {
        std::visit(
            [&](auto& stream) {
                boost::asio::async_write(stream, buffers, std::forward<Handler>(handler));
            },
            stream_);
    }

    template <typename Handler>
    void async_read_some(boost::asio::mutable_buffer buffer, Handler&& handler) {
        std::visit(
            [&](auto& stream) { stream.async_read_some(buffer, std::forward<Handler>(handler)); },
            stream_);
    }

    /// TCP keepalive probes after `idle` of silence, rounded up to seconds (TCP and TLS; no-op on
    /// unix sockets and for 0).
    void enable_keepalive(std::chrono::steady_clock::duration idle);

    /// Closes the socket at once (no TLS close_notify: a stuck peer must not delay it).
    void close() noexcept;

  private:
    executor_type executor_;
    std::shared_ptr<boost::asio::ssl::context> tls_context_;  // outlives the Tls stream using it
    std::variant<Tcp, Unix, Tls> stream_;
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_TRANSPORT_HPP
