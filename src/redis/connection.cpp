// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/connection.hpp>

#include "reply_parser.hpp"

#include <fmt/format.h>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <stdexcept>

namespace keyedpool::redis {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using ExecHandler = asio::any_completion_handler<void(error_code, Reply)>;

void validate(const ConnectionConfig& config) {
    if (config.host.empty()) {
        throw std::invalid_argument("ConnectionConfig.host must not be empty");
    }
    if (config.port == 0) {
        throw std::invalid_argument("ConnectionConfig.port must not be 0");
    }
    if (config.database < 0) {
        throw std::invalid_argument(
            fmt::format("ConnectionConfig.database must be >= 0, got {}", config.database));
    }
    if (config.connect_timeout <= std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument("ConnectionConfig.connect_timeout must be > 0");
    }
    if (config.max_reply_bytes == 0) {
        throw std::invalid_argument("ConnectionConfig.max_reply_bytes must be > 0");
    }
}

/// The connection's state, shared by the public handle and the I/O in flight. Everything below is
/// touched only on `strand` except the atomics.
struct Connection::Impl : std::enable_shared_from_this<Impl> {
    Impl(const executor_type& executor, ConnectionConfig cfg)
        : strand(asio::make_strand(executor)),
          socket(strand),
          config(std::move(cfg)),
          parser(config.max_reply_bytes) {}

    /// Queues a formatted command; on the strand.
    void exec(std::string payload, ExecHandler handler) {
        if (closed) {
            complete(std::move(handler), ResultCode::io_error, Reply{});
            return;
        }
        outgoing += payload;
        pending.push_back(std::move(handler));
        commands_sent.fetch_add(1, std::memory_order_relaxed);
        start_write();
    }

    /// One write at a time; whatever queued meanwhile goes out in the next one (pipelining).
    void start_write() {
        if (writing_now || outgoing.empty() || !socket_ready) {
            return;
        }
        writing_now = true;
        in_flight.swap(outgoing);
        outgoing.clear();
        asio::async_write(
            socket, asio::buffer(in_flight),
            asio::bind_executor(strand, [self = shared_from_this()](error_code ec, std::size_t) {
                self->writing_now = false;
                self->in_flight.clear();
                if (ec) {
                    self->fail(ResultCode::io_error, ec.message());
                    return;
                }
                self->start_write();
            }));
    }

    void start_read() {
        socket.async_read_some(
            asio::buffer(read_buffer),
            asio::bind_executor(strand, [self = shared_from_this()](error_code ec, std::size_t n) {
                self->on_read(ec, n);
            }));
    }

    void on_read(error_code ec, std::size_t n) {
        if (ec) {
            if (ec == asio::error::eof && parser.has_partial_reply()) {
                fail(ResultCode::protocol_error, "the server closed the connection mid-reply");
            } else {
                fail(ResultCode::io_error,
                     ec == asio::error::eof ? "the server closed the connection" : ec.message());
            }
            return;
        }
        parser.feed({read_buffer.data(), n});
        for (;;) {
            error_code parse_ec;
            auto reply = parser.next(parse_ec);
            if (parse_ec) {
                fail(ResultCode::protocol_error, parser.error_text());
                return;
            }
            if (!reply) {
                break;
            }
            deliver(std::move(*reply));
            if (closed) {
                return;
            }
        }
        start_read();
    }

    static bool is_push(const Reply& reply) {
        if (reply.type() != ReplyType::array || reply.elements().empty()) {
            return false;
        }
        const auto& kind = reply.elements().front().text();
        return kind == "message" || kind == "pmessage";
    }

    void deliver(Reply reply) {
        if (on_push && is_push(reply)) {
            on_push(std::move(reply));
            return;
        }
        if (pending.empty()) {
            fail(ResultCode::protocol_error, "a reply arrived that no command asked for");
            return;
        }
        ExecHandler handler = std::move(pending.front());
        pending.pop_front();
        const error_code ec = reply.error_code();
        if (ec) {
            logger()->debug("keyedpool.redis: error reply: {}", reply.text());
        }
        complete(std::move(handler), ec, std::move(reply));
    }

    /// Closes the connection and fails everything pending with `ec`. Idempotent.
    void fail(error_code ec, const std::string& why) {
        if (closed) {
            return;
        }
        closed = true;
        connected.store(false);
        if (ec != asio::error::operation_aborted) {
            logger()->warn("keyedpool.redis: connection to {}:{} failed: {} ({})", config.host,
                           config.port, why, ec.message());
        }
        error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
        outgoing.clear();
        while (!pending.empty()) {
            complete(std::move(pending.front()), ec, Reply{});
            pending.pop_front();
        }
    }

    /// Completes a command's handler on its associated executor, never inline.
    void complete(ExecHandler handler, error_code ec, Reply reply) {
        asio::post(strand, asio::append(std::move(handler), ec, std::move(reply)));
    }

    asio::strand<executor_type> strand;
    tcp::socket socket;
    ConnectionConfig config;
    detail::ReplyParser parser;
    std::deque<ExecHandler> pending;  // commands written or queued, in order
    std::string outgoing;             // formatted, not yet written
    std::string in_flight;            // being written
    bool writing_now = false;
    bool socket_ready = false;  // connected: writes may start
    bool closed = false;
    PushHandler on_push;
    std::array<char, 16 * 1024> read_buffer{};
    std::atomic<bool> connected{false};
    std::atomic<std::uint64_t> commands_sent{0};
};

namespace {

asio::awaitable<Reply> exec_on(const std::shared_ptr<Connection::Impl>& impl,
                               std::vector<std::string> command) {
    auto token = asio::as_tuple(asio::use_awaitable);
    auto [ec, reply] = co_await asio::async_initiate<decltype(token), void(error_code, Reply)>(
        [&](auto handler) { impl->exec(detail::format_command(command), std::move(handler)); },
        token);
    if (ec) {
        throw boost::system::system_error(ec, reply.text());
    }
    co_return reply;
}

/// Resolves, connects, authenticates, selects. Runs on the connection's strand.
asio::awaitable<void> handshake(std::shared_ptr<Connection::Impl> impl) {
    const auto& config = impl->config;
    error_code ec;
    auto address = asio::ip::make_address(config.host, ec);
    if (!ec) {
        co_await impl->socket.async_connect(tcp::endpoint(address, config.port),
                                            asio::use_awaitable);
    } else {
        tcp::resolver resolver(impl->strand);
        auto endpoints = co_await resolver.async_resolve(config.host, std::to_string(config.port),
                                                         asio::use_awaitable);
        co_await asio::async_connect(impl->socket, endpoints, asio::use_awaitable);
    }
    impl->socket.set_option(tcp::no_delay(true));
    impl->socket_ready = true;
    impl->connected.store(true);
    impl->start_read();
    if (!config.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!config.username.empty()) {
            auth.push_back(config.username);
        }
        auth.push_back(config.password);
        co_await exec_on(impl, std::move(auth));
    }
    if (config.database != 0) {
        co_await exec_on(impl, command("SELECT", config.database));
    }
}

/// The handshake bounded by connect_timeout; the error, if any, after closing the socket.
asio::awaitable<error_code> connect_within_timeout(std::shared_ptr<Connection::Impl> impl) {
    // When the time is up, failing the connection closes the socket, which ends whatever the
    // handshake waits for (connect, or a reply to AUTH/SELECT that a stuck server never sends).
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(impl->strand, impl->config.connect_timeout);
    timer.async_wait([impl, timed_out](error_code ec) {
        if (!ec) {
            *timed_out = true;
            impl->fail(asio::error::operation_aborted, "connect timeout");
        }
    });
    error_code ec;
    try {
        co_await handshake(impl);
    } catch (const boost::system::system_error& e) {
        // Reply errors (AUTH, SELECT) keep their code; network errors are connect_failed.
        ec = e.code().category() == result_category() ? e.code()
                                                      : error_code(ResultCode::connect_failed);
        if (!*timed_out) {
            logger()->warn("keyedpool.redis: connecting to {}:{} failed: {}", impl->config.host,
                           impl->config.port, e.what());
        }
    }
    timer.cancel();
    if (*timed_out) {
        ec = ResultCode::timeout;
        logger()->warn("keyedpool.redis: connecting to {}:{} timed out", impl->config.host,
                       impl->config.port);
    }
    if (ec) {
        impl->fail(asio::error::operation_aborted, "connect failed");
    }
    co_return ec;
}

}  // namespace

void Connection::connect_erased(
    executor_type executor, ConnectionConfig config,
    asio::any_completion_handler<void(error_code, std::shared_ptr<Connection>)> handler) {
    auto impl = std::make_shared<Impl>(executor, std::move(config));
    auto strand = impl->strand;
    asio::co_spawn(
        strand, connect_within_timeout(impl),
        [impl, handler = std::move(handler)](std::exception_ptr e, error_code ec) mutable {
            if (e) {
                ec = ResultCode::connect_failed;
            }
            auto connection = ec ? nullptr : std::make_shared<Connection>(impl);
            asio::post(impl->strand, asio::append(std::move(handler), ec, std::move(connection)));
        });
}

Connection::Connection(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

Connection::~Connection() {
    close();
}

void Connection::exec_erased(std::vector<std::string> command, ExecHandler handler) {
    std::string payload = detail::format_command(command);
    auto impl = impl_;
    asio::post(impl->strand,
               [impl, payload = std::move(payload), handler = std::move(handler)]() mutable {
                   impl->exec(std::move(payload), std::move(handler));
               });
}

void Connection::set_push_handler(PushHandler handler) {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl, handler = std::move(handler)]() mutable {
        impl->on_push = std::move(handler);
    });
}

bool Connection::is_connected() const noexcept {
    return impl_->connected.load();
}

void Connection::close() noexcept {
    impl_->connected.store(false);
    try {
        auto impl = impl_;
        asio::dispatch(impl->strand, [impl] {
            impl->fail(asio::error::operation_aborted, "closed by the user");
        });
    } catch (...) {  // allocation failure: the socket closes when the last reference goes
    }
}

std::uint64_t Connection::commands_sent() const noexcept {
    return impl_->commands_sent.load(std::memory_order_relaxed);
}

Connection::executor_type Connection::get_executor() const noexcept {
    return impl_->strand;
}

}  // namespace keyedpool::redis
