// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The transports under redis::Connection: a unix domain socket and TLS (with certificates the
// test makes), against real redis-server processes; the lock service on each.
#include "awaiting.hpp"
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"
#include "tls_files.hpp"

#include <keyedpool/logging.hpp>
#include <keyedpool/redis/connection.hpp>
#include <keyedpool/redis/lock_service.hpp>
#include <keyedpool/redis/url.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::Connection;
using redis::RedisLockService;
using namespace std::chrono_literals;

/// Everything keyedpool logs in a scope (debug and up), to look for secrets in it.
class LogCapture {
  public:
    LogCapture()
        : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(text_)),
          level_(logger()->level()) {
        logger()->sinks().push_back(sink_);
        logger()->set_level(spdlog::level::debug);
    }
    ~LogCapture() {
        auto& sinks = logger()->sinks();
        sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
        logger()->set_level(level_);
    }
    std::string text() const { return text_.str(); }

  private:
    std::ostringstream text_;
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
    spdlog::level::level_enum level_;
};

/// A try-lock and a release through a lock service on `config`, then a second service waiting for
/// the lock the first holds: the release reaches it through pub/sub on the same transport.
asio::awaitable<void> lock_round(asio::io_context& io, redis::ConnectionConfig config,
                                 const std::string& resource) {
    redis::RedisLockServiceOptions options;
    options.connection = std::move(config);
    options.recheck_interval = 1h;  // only the release message can wake the waiter
    RedisLockService holder_service(io.get_executor(), options);
    RedisLockService waiter_service(io.get_executor(), options);
    auto holder = co_await holder_service.async_try_lock(resource, 10s);
    EXPECT_TRUE(holder.owns_lock());
    std::optional<std::pair<error_code, LockGuard>> waiter;
    waiter_service.async_lock(
        resource, LockOptions{.wait = 10s, .lease = 10s},
        [&](error_code ec, LockGuard guard) { waiter.emplace(ec, std::move(guard)); });
    asio::steady_timer timer(io);
    while (waiter_service.lock_requests_sent() == 0) {  // its try must reach the queue first
        timer.expires_after(1ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::use_awaitable);
    EXPECT_FALSE(waiter) << "the waiter got a lock that was held";
    const auto fence = holder.fencing_token();
    co_await holder.async_release();
    while (!waiter) {
        timer.expires_after(1ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    EXPECT_FALSE(waiter->first) << waiter->first.message();
    EXPECT_TRUE(waiter->second.owns_lock());
    EXPECT_GT(waiter->second.fencing_token(), fence);
    co_await waiter->second.async_release();
}

// ---- unix domain sockets -------------------------------------------------------------------

class UnixSocketTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        path_ = new std::string("/tmp/keyedpool-test-" + std::to_string(::getpid()) + ".sock");
        server_ = new RedisServer({"--unixsocket", *path_, "--unixsocketperm", "700"});
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
        std::filesystem::remove(*path_);
        delete path_;
    }
    static redis::ConnectionConfig config() {
        redis::ConnectionConfig c;
        c.unix_socket = *path_;
        c.host = "no-such-host.invalid";  // ignored: the socket path wins
        c.port = 1;
        return c;
    }

    static RedisServer* server_;
    static std::string* path_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisServer* UnixSocketTest::server_ = nullptr;
std::string* UnixSocketTest::path_ = nullptr;

TEST_F(UnixSocketTest, CommandsGoThroughTheSocketFile) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto [ec, c] = co_await try_connect(config());
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        co_await c->async_exec(redis::command("SET", "unix:k", std::string(256 * 1024, 'u')));
        auto value = co_await c->async_exec(redis::command("GET", "unix:k"));
        EXPECT_EQ(value.text().size(), 256u * 1024);
        // The server sees a unix-socket client: its address is the socket path.
        auto info = co_await c->async_exec(redis::command("CLIENT", "INFO"));
        EXPECT_NE(info.text().find("addr=" + *path_), std::string::npos) << info.text();
    });
}

TEST_F(UnixSocketTest, AUrlSelectsTheDatabase) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto [ec, c] = co_await try_connect(redis::parse_url("unix://" + *path_ + "?db=3"));
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        auto info = co_await c->async_exec(redis::command("CLIENT", "INFO"));
        EXPECT_NE(info.text().find(" db=3 "), std::string::npos) << info.text();
    });
}

TEST_F(UnixSocketTest, LocksWorkOverIt) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        co_await lock_round(io_, config(), "unix-resource");
    });
}

TEST_F(UnixSocketTest, AMissingSocketIsConnectFailed) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.unix_socket = "/tmp/keyedpool-no-such-socket.sock";
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_EQ(ec, ResultCode::connect_failed) << ec.message();
        EXPECT_FALSE(connection);
    });
}

// ---- TLS -----------------------------------------------------------------------------------

class TlsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        files_ = new TlsFiles();
        tls_port_ = free_loopback_port();
        server_ = new RedisServer(files_->server_args(tls_port_));
        strict_port_ = free_loopback_port();
        strict_server_ = new RedisServer(files_->server_args(strict_port_, true));
    }
    static void TearDownTestSuite() {
        delete server_;
        delete strict_server_;
        delete files_;
        server_ = strict_server_ = nullptr;
        files_ = nullptr;
    }
    /// TLS to the server, verified against the test CA, by IP address (the certificate has it).
    static redis::ConnectionConfig config(std::uint16_t port = tls_port_) {
        redis::ConnectionConfig c;
        c.host = "127.0.0.1";
        c.port = port;
        c.tls.enabled = true;
        c.tls.ca_file = files_->ca();
        return c;
    }

    static TlsFiles* files_;
    static RedisServer* server_;
    static RedisServer* strict_server_;  // requires a client certificate
    static std::uint16_t tls_port_;
    static std::uint16_t strict_port_;
    QuietLogger quiet_;
    asio::io_context io_;
};
TlsFiles* TlsTest::files_ = nullptr;
RedisServer* TlsTest::server_ = nullptr;
RedisServer* TlsTest::strict_server_ = nullptr;
std::uint16_t TlsTest::tls_port_ = 0;
std::uint16_t TlsTest::strict_port_ = 0;

TEST_F(TlsTest, CommandsAndLargeValuesGoThroughTheVerifiedStream) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto [ec, c] = co_await try_connect(config());
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        // Larger than any one TLS record or socket buffer: written in many pieces.
        const std::string big(3 * 1024 * 1024 + 7, 't');
        co_await c->async_exec(redis::command("SET", "tls:big", big));
        auto value = co_await c->async_exec(redis::command("GET", "tls:big"));
        EXPECT_EQ(value.text(), big);
        // Pipelined: many commands in flight on one TLS stream, replies in order.
        std::vector<std::pair<error_code, redis::Reply>> replies(64);
        int done = 0;
        for (int i = 0; i < 64; ++i) {
            c->async_exec(redis::command("INCRBY", "tls:counter", 1),
                          [&, i](error_code e, redis::Reply r) {
                              replies[i] = {e, std::move(r)};
                              ++done;
                          });
        }
        asio::steady_timer timer(io_);
        while (done < 64) {
            timer.expires_after(1ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
        for (int i = 0; i < 64; ++i) {
            EXPECT_FALSE(replies[i].first);
            EXPECT_EQ(replies[i].second.as_integer(), i + 1);
        }
        // The server counts this client as a TLS one.
        auto info = co_await c->async_exec(redis::command("INFO", "stats"));
        EXPECT_NE(info.text().find("total_connections_received"), std::string::npos);
    });
}

TEST_F(TlsTest, ARedissUrlWithTheCaInTheDefaultsConnects) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        redis::ConnectionConfig defaults;
        defaults.tls.ca_file = files_->ca();
        auto url = "rediss://localhost:" + std::to_string(tls_port_) + "/2";
        auto [ec, c] = co_await try_connect(redis::parse_url(url, defaults));
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        auto info = co_await c->async_exec(redis::command("CLIENT", "INFO"));
        EXPECT_NE(info.text().find(" db=2 "), std::string::npos) << info.text();
    });
}

TEST_F(TlsTest, AnUntrustedCertificateIsTlsFailedWithoutLeakingThePassword) {
    LogCapture log;
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.tls.ca_file = files_->other_ca();
        c.password = "hunter2-do-not-log";
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_EQ(ec, ResultCode::tls_failed) << ec.message();
        EXPECT_FALSE(connection);
    });
    const auto text = log.text();
    EXPECT_NE(text.find("certificate verify failed"), std::string::npos) << text;
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
}

TEST_F(TlsTest, ANameTheCertificateDoesNotCarryIsTlsFailed) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.tls.server_name = "someone-else.example";
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_EQ(ec, ResultCode::tls_failed) << ec.message();
        c.tls.server_name = "localhost";  // the certificate's DNS name: accepted
        auto [ok, named] = co_await try_connect(c);
        EXPECT_FALSE(ok) << ok.message();
    });
}

TEST_F(TlsTest, ACaDirectoryIsTrustedLikeACaFile) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.tls.ca_file.clear();
        c.tls.ca_path = files_->ca_dir();
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_FALSE(ec) << ec.message();
        c.tls.ca_path = files_->path("no-such-dir");  // loads, but trusts nothing: refused
        auto [refused, none] = co_await try_connect(c);
        EXPECT_EQ(refused, ResultCode::tls_failed) << refused.message();
    });
}

TEST_F(TlsTest, WithVerificationOffAnyCertificateIsAccepted) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.tls.ca_file = files_->other_ca();
        c.tls.verify_peer = false;
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_FALSE(ec) << ec.message();
    });
}

TEST_F(TlsTest, AServerThatRequiresAClientCertificateGetsOne) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto without = config(strict_port_);
        auto [refused, none] = co_await try_connect(without);
        EXPECT_EQ(refused, ResultCode::tls_failed) << refused.message();
        auto with = without;
        with.tls.cert_file = files_->client_cert();
        with.tls.key_file = files_->client_key();
        auto [ec, c] = co_await try_connect(with);
        if (ec) {
            ADD_FAILURE() << ec.message();
            co_return;
        }
        auto pong = co_await c->async_exec(redis::command("PING"));
        EXPECT_EQ(pong.text(), "PONG");
    });
}

TEST_F(TlsTest, AFileThatCannotBeLoadedIsTlsFailed) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config();
        c.tls.ca_file = "/nonexistent/ca.pem";
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_EQ(ec, ResultCode::tls_failed) << ec.message();
        c = config();
        c.tls.cert_file = files_->client_cert();
        c.tls.key_file = files_->ca();  // a certificate, not a key
        auto [key_ec, none] = co_await try_connect(c);
        EXPECT_EQ(key_ec, ResultCode::tls_failed) << key_ec.message();
    });
}

// A peer that accepts TCP and never answers the ClientHello: the handshake is inside
// connect_timeout.
TEST_F(TlsTest, ASilentPeerIsATimeoutWithinConnectTimeout) {
    FakeServer silent(io_, [](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
        std::array<char, 4096> sink{};
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink),
                                                           asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
        }
    });
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = config(silent.port());
        c.connect_timeout = 200ms;
        auto [ec, connection] = co_await try_connect(c);
        EXPECT_EQ(ec, ResultCode::timeout) << ec.message();
        silent.stop();
    });
}

TEST_F(TlsTest, LocksWorkOverIt) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        co_await lock_round(io_, config(), "tls-resource");
    });
}

}  // namespace
}  // namespace keyedpool::test
