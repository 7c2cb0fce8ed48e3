// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Test fixtures: a real redis-server on a free loopback port, and a scripted fake
// server.
#ifndef KEYEDPOOL_TESTS_REDIS_SERVER_HPP
#define KEYEDPOOL_TESTS_REDIS_SERVER_HPP

#include <keyedpool/redis/connection.hpp>

#include <boost/asio.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace keyedpool::test {

/// A port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_loopback_port();

/// True once a server (redis-server, or one in sentinel mode) answers PING on 127.0.0.1:`port`.
bool answers_ping(std::uint16_t port);

/// Debian's redis-server on 127.0.0.1, without persistence, started by the constructor (which
/// returns once it answers PING) and stopped by the destructor — or killed with the test process
/// when that ends any other way (a crash, an abort, a signal). Each server has a directory of its
/// own (removed by the destructor): a replica's full sync writes `dump.rdb` there, and a shared
/// directory would hand that data to every server started after it.
class RedisServer {
  public:
    explicit RedisServer(std::vector<std::string> extra_args = {});
    /// Started through `launcher` (a program that execs its arguments in the same process, e.g.
    /// `{"env", "LD_PRELOAD=...", "redis-server"}` minus the last: the server's own arguments
    /// follow).
    RedisServer(std::vector<std::string> extra_args, std::vector<std::string> launcher);
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    std::uint16_t port() const { return port_; }
    redis::ConnectionConfig config() const;

    /// Stops the server (SIGTERM, waits for it to exit).
    void stop();
    /// Freezes the server (SIGSTOP): it keeps its sockets, the kernel accepts and buffers, and
    /// nothing is answered until `resume()` (SIGCONT).
    void pause();
    void resume();
    /// Starts it again on the same port.
    void start();
    /// Kills it with SIGKILL (no shutdown: what was not replicated or saved is lost).
    void kill();
    /// Its working directory (`--dir`): relative file names in its arguments land here.
    const std::string& dir() const { return dir_; }
    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }

  private:
    std::vector<std::string> args_;
    std::vector<std::string> launcher_;
    std::uint16_t port_;
    std::string dir_;
    pid_t pid_ = -1;
};

/// A redis-server whose clocks (wall and monotonic: TIME, key expiry) run `speed` times as fast as
/// real time (under the test shim `tools/fast_clock.cpp`, preloaded).
RedisServer fast_clock_redis_server(int speed);

/// A TCP server on 127.0.0.1 that answers every connection by calling `script` with the socket
/// (run as a coroutine). For feeding a client garbage, truncated or oversized replies.
class FakeServer {
  public:
    using Script = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;
    FakeServer(boost::asio::io_context& io, Script script);
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    redis::ConnectionConfig config() const;
    void stop() { acceptor_.close(); }

  private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::ip::tcp::acceptor acceptor_;
    Script script_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_REDIS_SERVER_HPP
