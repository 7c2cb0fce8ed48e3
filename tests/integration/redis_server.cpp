// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "redis_server.hpp"

#include <filesystem>
#include "child_process.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

#include <signal.h>
#include <sys/wait.h>

namespace keyedpool::test {

namespace asio = boost::asio;
using asio::ip::tcp;

std::uint16_t free_loopback_port() {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return acceptor.local_endpoint().port();
}

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : RedisServer(std::move(extra_args), {}) {}

RedisServer::RedisServer(std::vector<std::string> extra_args, std::vector<std::string> launcher)
    : args_(std::move(extra_args)),
      launcher_(std::move(launcher)),
      port_(free_loopback_port()),
      dir_("/tmp/keyedpool-redis-" + std::to_string(::getpid()) + "-" + std::to_string(port_)) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    start();
}

RedisServer::~RedisServer() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

redis::ConnectionConfig RedisServer::config() const {
    redis::ConnectionConfig config;
    config.host = "127.0.0.1";
    config.port = port_;
    return config;
}

RedisServer fast_clock_redis_server(int speed) {
    return RedisServer({}, {"env", std::string("LD_PRELOAD=") + KEYEDPOOL_FAST_CLOCK_SHIM,
                            "KEYEDPOOL_CLOCK_SPEED=" + std::to_string(speed)});
}

// A fresh blocking connection per try.
bool answers_ping(std::uint16_t port) {
    try {
        asio::io_context io;
        tcp::socket socket(io);
        socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        asio::write(socket, asio::buffer(std::string("PING\r\n")));
        std::string reply;
        asio::read_until(socket, asio::dynamic_buffer(reply), "\r\n");
        return reply.rfind("+PONG", 0) == 0 || reply.rfind("-NOAUTH", 0) == 0;
    } catch (const std::exception&) {
        return false;
    }
}

void RedisServer::start() {
    std::vector<std::string> args{"redis-server",
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no",
                                  "--loglevel",
                                  "warning",
                                  "--dir",
                                  dir_};
    args.insert(args.end(), args_.begin(), args_.end());
    args.insert(args.begin(), launcher_.begin(), launcher_.end());
    try {
        pid_ = spawn_bound_child(args);  // dies with this process, however it ends
    } catch (const std::runtime_error& e) {
        pid_ = -1;
        throw std::runtime_error(std::string(e.what()) +
                                 " (is it installed? scripts/install-deps.sh)");
    }
    // Wait until it serves, polling on a timer (bounded).
    asio::io_context io;
    asio::steady_timer timer(io);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!answers_ping(port_)) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("redis-server exited as it started (bad arguments?), status " +
                                     std::to_string(status));
        }
        if (std::chrono::steady_clock::now() > deadline) {
            stop();
            throw std::runtime_error("redis-server did not start within 10 s");
        }
        timer.expires_after(std::chrono::milliseconds(5));
        timer.wait();
    }
}

void RedisServer::pause() {
    ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
    ::kill(pid_, SIGCONT);
}

void RedisServer::kill() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
}

void RedisServer::stop() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        ::kill(pid_, SIGCONT);  // a paused server handles SIGTERM once it runs again
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
}

FakeServer::FakeServer(asio::io_context& io, Script script)
    : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      script_(std::move(script)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
}

redis::ConnectionConfig FakeServer::config() const {
    redis::ConnectionConfig config;
    config.host = "127.0.0.1";
    config.port = port();
    return config;
}

asio::awaitable<void> FakeServer::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            co_return;
        }
        asio::co_spawn(acceptor_.get_executor(), script_(std::move(socket)), asio::detached);
    }
}

}  // namespace keyedpool::test
