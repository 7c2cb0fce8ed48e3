// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// redis::Connection's deadlines and per-operation cancellation, against the server side of the
// socket driven by the test itself: it reads and answers exactly when the test says, so every
// interleaving (a command cancelled before or after it is written, a server that never answers)
// is produced on purpose, not hoped for.
#include "quiet_logger.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/redis/connection.hpp>

#include <gtest/gtest.h>
#include <boost/asio/experimental/parallel_group.hpp>

#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using redis::Connection;
using redis::Reply;
using namespace std::chrono_literals;

/// The server end of one connection, driven step by step by the test.
class Peer {
  public:
    explicit Peer(asio::io_context& io)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), socket_(io) {}

    redis::ConnectionConfig config() const {
        redis::ConnectionConfig config;
        config.port = acceptor_.local_endpoint().port();
        return config;
    }

    /// Connects a client with `config` (the port filled in) and accepts it.
    asio::awaitable<std::shared_ptr<Connection>> connect(redis::ConnectionConfig config) {
        config.port = acceptor_.local_endpoint().port();
        std::shared_ptr<Connection> client;
        auto executor = co_await asio::this_coro::executor;
        Connection::async_connect(executor, config,
                                  [&client](error_code ec, std::shared_ptr<Connection> c) {
                                      EXPECT_FALSE(ec) << ec.message();
                                      client = std::move(c);
                                  });
        socket_ = co_await acceptor_.async_accept(asio::use_awaitable);
        while (!client) {  // the connect handler is posted after the accept
            asio::steady_timer tick(executor, 1ms);
            co_await tick.async_wait(asio::use_awaitable);
        }
        co_return client;
    }

    /// Reads until what was received contains `marker`.
    asio::awaitable<void> read_until(std::string_view marker) {
        while (received_.find(marker) == std::string::npos) {
            char buffer[64 * 1024];
            const std::size_t n =
                co_await socket_.async_read_some(asio::buffer(buffer), asio::use_awaitable);
            received_.append(buffer, n);
        }
    }

    asio::awaitable<void> send(std::string bytes) {
        co_await asio::async_write(socket_, asio::buffer(bytes), asio::use_awaitable);
    }

    const std::string& received() const { return received_; }

    /// The client's end of the connection, as the server sees it.
    tcp::endpoint client_endpoint() const { return socket_.remote_endpoint(); }
    /// The server's end.
    tcp::endpoint server_endpoint() const { return socket_.local_endpoint(); }

  private:
    tcp::acceptor acceptor_;
    tcp::socket socket_;
    std::string received_;
};

/// Starts `command` on `client` with a cancellation slot the test controls; `result` is set when
/// it completes.
struct Controlled {
    asio::cancellation_signal signal;
    std::optional<std::pair<error_code, Reply>> result;

    void start(Connection& client, std::vector<std::string> command) {
        client.async_exec(
            std::move(command),
            asio::bind_cancellation_slot(signal.slot(), [this](error_code ec, Reply reply) {
                result.emplace(ec, std::move(reply));
            }));
    }
};

/// Lets the client's strand run what was posted to it.
asio::awaitable<void> settle() {
    for (int i = 0; i < 5; ++i) {
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
}

class ConnectionDeadlineTest : public ::testing::Test {
  protected:
    QuietLogger quiet_;
    asio::io_context io_;
    Peer peer_{io_};
};

// A command behind a write the server is not reading (32 MiB, more than loopback buffers hold)
// is still the client's: cancelling it drops it, and the server never sees it.
TEST_F(ConnectionDeadlineTest, ACommandCancelledBeforeItIsWrittenNeverReachesTheServer) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 0s;  // reading 32 MiB under a sanitizer may take a while
        auto client = co_await peer_.connect(config);
        Controlled big;
        Controlled dropped;
        big.start(*client, redis::command("SET", "big", std::string(32 * 1024 * 1024, 'x')));
        dropped.start(*client, redis::command("GET", "never-sent"));
        co_await settle();
        EXPECT_FALSE(dropped.result) << "a queued command completed by itself";
        dropped.signal.emit(asio::cancellation_type::total);  // nothing sent: even total works
        co_await settle();
        if (!dropped.result) {
            ADD_FAILURE() << "the cancellation did not complete the command";
            co_return;
        }
        EXPECT_EQ(dropped.result->first, asio::error::operation_aborted);
        EXPECT_FALSE(big.result);

        Controlled after;
        after.start(*client, redis::command("GET", "after"));
        co_await peer_.read_until("after");
        EXPECT_EQ(peer_.received().find("never-sent"), std::string::npos)
            << "the cancelled command was written";
        co_await peer_.send("+OK\r\n$5\r\nvalue\r\n");
        while (!after.result) {
            co_await settle();
        }
        EXPECT_FALSE(big.result->first);
        EXPECT_EQ(after.result->second, Reply::string("value")) << "replies out of order";
        EXPECT_TRUE(client->is_connected());
        client->close();
    });
}

// Once written, the server may run it: terminal and partial cancellation complete the caller at
// once and the reply is dropped when it comes, so the next command still gets its own reply.
TEST_F(ConnectionDeadlineTest, ACommandCancelledAfterItIsWrittenKeepsTheRepliesInOrder) {
    for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial}) {
        Peer peer(io_);
        run_coroutine(io_, [&]() -> asio::awaitable<void> {
            const redis::ConnectionConfig config;
            auto client = co_await peer.connect(config);
            Controlled first;
            first.start(*client, redis::command("GET", "first"));
            co_await peer.read_until("first");
            first.signal.emit(type);
            co_await settle();
            if (!first.result) {
                ADD_FAILURE() << "cancelled, yet still waiting for the server";
                co_return;
            }
            EXPECT_EQ(first.result->first, asio::error::operation_aborted);

            Controlled second;
            second.start(*client, redis::command("GET", "second"));
            co_await peer.read_until("second");
            co_await peer.send("$1\r\n1\r\n$1\r\n2\r\n");
            while (!second.result) {
                co_await settle();
            }
            EXPECT_FALSE(second.result->first);
            EXPECT_EQ(second.result->second, Reply::string("2"))
                << "the second command got the first one's reply";
            EXPECT_TRUE(client->is_connected());
            client->close();
        });
    }
}

// `total` promises no side effect, which a written command cannot give back: it is ignored.
TEST_F(ConnectionDeadlineTest, TotalCancellationOfAWrittenCommandIsIgnored) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        const redis::ConnectionConfig config;
        auto client = co_await peer_.connect(config);
        Controlled command;
        command.start(*client, redis::command("INCR", "counter"));
        co_await peer_.read_until("counter");
        command.signal.emit(asio::cancellation_type::total);
        co_await settle();
        EXPECT_FALSE(command.result);
        co_await peer_.send(":7\r\n");
        while (!command.result) {
            co_await settle();
        }
        EXPECT_FALSE(command.result->first);
        EXPECT_EQ(command.result->second, Reply::integer(7));
        client->close();
    });
}

// A caller's own deadline (async_exec_until) ends its command with `timeout` and, unlike
// command_timeout, leaves the connection open and in order.
TEST_F(ConnectionDeadlineTest, ACallersDeadlineEndsItsCommandAndKeepsTheConnection) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 0s;
        auto client = co_await peer_.connect(config);
        const auto start = std::chrono::steady_clock::now();
        auto [ec, reply] = co_await client->async_exec_until(
            redis::command("GET", "late"), start + 30ms, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::timeout);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
        EXPECT_TRUE(client->is_connected());

        Controlled next;
        next.start(*client, redis::command("GET", "next"));
        co_await peer_.read_until("next");
        co_await peer_.send("$4\r\nlate\r\n$4\r\nnext\r\n");
        while (!next.result) {
            co_await settle();
        }
        EXPECT_EQ(next.result->second, Reply::string("next")) << "replies out of order";
        client->close();
    });
}

// A coroutine cancelled while it waits (here by a parallel group racing a timer, as "wait at most
// 20 ms") gets operation_aborted without the server's help.
TEST_F(ConnectionDeadlineTest, ACancelledCoroutineStopsWaitingForTheServer) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        const redis::ConnectionConfig config;
        auto client = co_await peer_.connect(config);
        asio::steady_timer limit(io_, 20ms);
        auto [order, exec_ec, reply, timer_ec] =
            co_await asio::experimental::make_parallel_group(
                client->async_exec(redis::command("GET", "slow"), asio::deferred),
                limit.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        EXPECT_EQ(order[0], 1u) << "the timer should have won";
        EXPECT_EQ(exec_ec, asio::error::operation_aborted);
        EXPECT_TRUE(client->is_connected());
        client->close();
    });
}

// A server that reads and never answers (stopped, or stuck): the health check ends every
// command waiting on it, and the connection, instead of leaving them pending for ever.
TEST_F(ConnectionDeadlineTest, TheHealthCheckEndsCommandsOnASilentServer) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 50ms;
        auto client = co_await peer_.connect(config);
        const auto start = std::chrono::steady_clock::now();
        Controlled a;
        Controlled b;
        a.start(*client, redis::command("GET", "a"));
        b.start(*client, redis::command("GET", "b"));
        co_await peer_.read_until("b");
        while (!a.result || !b.result) {
            asio::steady_timer tick(io_, 5ms);
            co_await tick.async_wait(asio::use_awaitable);
        }
        EXPECT_EQ(a.result->first, ResultCode::timeout);
        EXPECT_EQ(b.result->first, ResultCode::timeout);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
        EXPECT_FALSE(client->is_connected());
    });
}

// command_timeout alone (health check off) bounds each command from its call.
TEST_F(ConnectionDeadlineTest, CommandTimeoutEndsACommandTheServerNeverAnswers) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 0s;
        config.command_timeout = 40ms;
        auto client = co_await peer_.connect(config);
        const auto start = std::chrono::steady_clock::now();
        auto [ec, reply] = co_await client->async_exec(redis::command("GET", "k"),
                                                       asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::timeout);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
        EXPECT_FALSE(client->is_connected());
        auto [later, unused] = co_await client->async_exec(redis::command("PING"),
                                                           asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(later, ResultCode::io_error) << "a command on the closed connection";
    });
}

// Idle is not silent: with nothing owed, no check runs, however long the connection rests.
TEST_F(ConnectionDeadlineTest, AnIdleConnectionIsNotDeclaredDead) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 10ms;
        config.command_timeout = 10ms;
        auto client = co_await peer_.connect(config);
        asio::steady_timer rest(io_, 60ms);
        co_await rest.async_wait(asio::use_awaitable);
        EXPECT_TRUE(client->is_connected());
        client->close();
    });
}

// A pending command whose handler owns the connection (a coroutine holding the service that
// holds it) is a cycle only the reply breaks. A context destroyed without running again must still
// free it, as it frees the handlers of Asio's own operations.
TEST(ConnectionLifetime, DestroyingTheContextFreesConnectionsWithCommandsPending) {
    QuietLogger quiet;
    std::weak_ptr<Connection> weak;
    {
        asio::io_context io;
        Peer peer(io);
        run_coroutine(io, [&]() -> asio::awaitable<void> {
            const redis::ConnectionConfig config;
            auto client = co_await peer.connect(config);
            weak = client;
            client->async_exec(redis::command("GET", "never-answered"),
                               [client](error_code, Reply) {});  // the cycle
            co_await peer.read_until("never-answered");
        });
        EXPECT_FALSE(weak.expired());
    }
    EXPECT_TRUE(weak.expired()) << "the connection outlived its execution context";
}

/// The kernel's timer on the loopback TCP socket bound to `local_port` (/proc/net/tcp): its kind
/// (0 none, 1 retransmit, 2 keepalive...) and seconds until it fires; nullopt if not found.
/// The timer of the connection from `local_port` to `remote_port` in /proc/net/tcp: its kind (2:
/// keepalive) and seconds left. Both ports: a socket in TIME_WAIT from an earlier connection may
/// have the same local port (and a timer of kind 3).
std::optional<std::pair<int, double>> tcp_timer(std::uint16_t local_port,
                                                std::uint16_t remote_port) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::getline(table, line);  // header
    auto port_of = [](const std::string& address) {
        return std::stoul(address.substr(address.find(':') + 1), nullptr, 16);
    };
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues, timer;
        fields >> slot >> local >> remote >> state >> queues >> timer;
        if (port_of(local) != local_port || port_of(remote) != remote_port) {
            continue;
        }
        const int kind = std::stoi(timer.substr(0, timer.find(':')), nullptr, 16);
        const long ticks = std::stol(timer.substr(timer.find(':') + 1), nullptr, 16);
        return std::pair{kind,
                         static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK))};
    }
    return std::nullopt;
}

// The other half of the health check: an idle connection has TCP keepalive probes due within
// `health_check_interval` (rounded up to seconds), so a peer that vanished closes it.
TEST_F(ConnectionDeadlineTest, AnIdleConnectionHasKeepaliveProbesAtTheHealthCheckInterval) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig config;
        config.health_check_interval = 3s;
        auto client = co_await peer_.connect(config);
        const auto timer =
            tcp_timer(peer_.client_endpoint().port(), peer_.server_endpoint().port());
        EXPECT_TRUE(timer.has_value()) << "the client socket is not in /proc/net/tcp";
        if (timer) {
            EXPECT_EQ(timer->first, 2) << "no keepalive timer on the idle socket";
            EXPECT_LE(timer->second, 3.0) << "keepalive not at the health check interval";
        }
        client->close();
    });
}

TEST(ConnectionDeadlineConfig, NegativeDeadlinesAreRejectedNamingTheField) {
    asio::io_context io;
    redis::ConnectionConfig config;
    config.command_timeout = -1ms;
    EXPECT_THROW(redis::validate(config), std::invalid_argument);
    try {
        redis::validate(config);
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("command_timeout"), std::string::npos);
    }
    config = {};
    config.health_check_interval = -1ms;
    try {
        redis::validate(config);
        ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("health_check_interval"), std::string::npos);
    }
}

}  // namespace
}  // namespace keyedpool::test
