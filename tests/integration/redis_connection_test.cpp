// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// keyedpool::redis::Connection against a real redis-server (started per suite on a free loopback
// port), and against a scripted fake server for hostile input.
#include "quiet_logger.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/connection.hpp>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keyedpool::test {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using redis::Connection;
using redis::Reply;
using redis::ReplyType;
using namespace std::chrono_literals;

class RedisConnectionTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new RedisServer(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }

    asio::awaitable<std::shared_ptr<Connection>> connect(redis::ConnectionConfig config) {
        co_return co_await Connection::async_connect(io_.get_executor(), std::move(config));
    }

    static RedisServer* server_;
    QuietLogger quiet_;
    asio::io_context io_;
};
RedisServer* RedisConnectionTest::server_ = nullptr;

TEST_F(RedisConnectionTest, RepliesAreTypedValues) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = co_await connect(server_->config());
        EXPECT_TRUE(c->is_connected());
        auto status = co_await c->async_exec(redis::command("SET", "typed:k", "v"));
        EXPECT_EQ(status.type(), ReplyType::status);
        EXPECT_EQ(status.text(), "OK");
        auto bulk = co_await c->async_exec(redis::command("GET", "typed:k"));
        EXPECT_EQ(bulk, Reply::string("v"));
        auto nil = co_await c->async_exec(redis::command("GET", "typed:missing"));
        EXPECT_TRUE(nil.is_nil());
        auto integer = co_await c->async_exec(redis::command("INCRBY", "typed:n", "41"));
        EXPECT_EQ(integer, Reply::integer(41));
        co_await c->async_exec(redis::command("RPUSH", "typed:list", "a", "b"));
        auto array = co_await c->async_exec(redis::command("LRANGE", "typed:list", "0", "-1"));
        std::vector<Reply> expected{Reply::string("a"), Reply::string("b")};
        EXPECT_EQ(array, Reply::array(expected));
        // Binary-safe arguments.
        std::string binary("a\0b\r\nc", 6);
        co_await c->async_exec(redis::command("SET", "typed:bin", binary));
        auto back = co_await c->async_exec(redis::command("GET", "typed:bin"));
        EXPECT_EQ(back.text(), binary);
        c->close();
    });
}

TEST_F(RedisConnectionTest, ErrorRepliesMapToTypedCodesAndKeepTheText) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = co_await connect(server_->config());
        co_await c->async_exec(redis::command("SET", "err:string", "x"));
        auto [ec, reply] = co_await c->async_exec(redis::command("LPUSH", "err:string", "y"),
                                                  asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::server_error);
        EXPECT_TRUE(reply.is_error());
        EXPECT_EQ(reply.server_error(), redis::ServerError::wrongtype);
        EXPECT_FALSE(reply.text().empty());
        auto [ec2, reply2] =
            co_await c->async_exec(redis::command("EVALSHA", std::string(40, 'f'), "0"),
                                   asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(reply2.server_error(), redis::ServerError::noscript);
        EXPECT_EQ(ec2, ResultCode::server_error);
        // The connection is still usable after error replies.
        auto pong = co_await c->async_exec(redis::command("PING"));
        EXPECT_EQ(pong.text(), "PONG");
        c->close();
    });
}

TEST(RedisServerError, LeadingWordsAreClassified) {
    using redis::ServerError;
    EXPECT_EQ(redis::classify_server_error("NOAUTH Authentication required."), ServerError::noauth);
    EXPECT_EQ(redis::to_error_code(ServerError::noauth), ResultCode::auth_failed);
    EXPECT_EQ(redis::to_error_code(ServerError::wrongpass), ResultCode::auth_failed);
    EXPECT_EQ(redis::to_error_code(ServerError::noperm), ResultCode::forbidden);
    for (auto busy : {"LOADING Redis is loading", "BUSY Redis is busy", "TRYAGAIN Multiple keys",
                      "MASTERDOWN Link down", "READONLY You can't write"}) {
        EXPECT_EQ(Reply::error(busy).error_code(), ResultCode::server_busy) << busy;
    }
    EXPECT_EQ(Reply::error("ERR syntax error").error_code(), ResultCode::server_error);
    EXPECT_EQ(Reply::error("WHATEVER new error").server_error(), ServerError::other);
    EXPECT_EQ(Reply::error("WHATEVER new error").error_code(), ResultCode::server_error);
    EXPECT_FALSE(Reply::string("ERR not an error").error_code());
}

TEST_F(RedisConnectionTest, ConcurrentCommandsArePipelinedAndMatchedInOrder) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto c = co_await connect(server_->config());
        co_await c->async_exec(redis::command("DEL", "pipe:n"));
        const auto sent_before = c->commands_sent();
        std::vector<long long> results(1000, 0);
        int done = 0;
        for (int i = 0; i < 1000; ++i) {
            c->async_exec(redis::command("INCR", "pipe:n"), [&, i](error_code ec, Reply r) {
                EXPECT_FALSE(ec);
                results[i] = r.as_integer();
                ++done;
            });
        }
        auto last = co_await c->async_exec(redis::command("GET", "pipe:n"));
        EXPECT_EQ(done, 1000) << "replies must complete in the order the commands were issued";
        EXPECT_EQ(last.text(), "1000");
        for (int i = 0; i < 1000; ++i) {
            EXPECT_EQ(results[i], i + 1);
        }
        EXPECT_EQ(c->commands_sent() - sent_before, 1001u);
        c->close();
    });
}

TEST_F(RedisConnectionTest, HandlersAreNotCompletedInline) {
    std::shared_ptr<Connection> c;
    bool connected = false;
    Connection::async_connect(io_.get_executor(), server_->config(),
                              [&](error_code ec, std::shared_ptr<Connection> conn) {
                                  ASSERT_FALSE(ec);
                                  c = conn;
                                  connected = true;
                              });
    EXPECT_FALSE(connected);
    while (!connected && io_.run_one_for(5s)) {
    }
    ASSERT_TRUE(connected);
    bool replied = false;
    c->async_exec(redis::command("PING"), [&](error_code, Reply) { replied = true; });
    EXPECT_FALSE(replied);
    while (!replied && io_.run_one_for(5s)) {
    }
    EXPECT_TRUE(replied);
    c->close();
}

TEST_F(RedisConnectionTest, SelectsTheConfiguredDatabase) {
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        auto config = server_->config();
        config.database = 3;
        auto db3 = co_await connect(config);
        co_await db3->async_exec(redis::command("SET", "select:k", "in-3"));
        auto db0 = co_await connect(server_->config());
        EXPECT_TRUE((co_await db0->async_exec(redis::command("GET", "select:k"))).is_nil());
        EXPECT_EQ((co_await db3->async_exec(redis::command("GET", "select:k"))).text(), "in-3");
        db3->close();
        db0->close();
    });
}

TEST(RedisAuth, PasswordIsSentOnConnectAndWrongOnesAreTyped) {
    QuietLogger quiet;
    RedisServer server({"--requirepass", "s3cret"});
    asio::io_context io;
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        auto config = server.config();
        auto [ec_none, anonymous] = co_await Connection::async_connect(
            io.get_executor(), config, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ec_none);
        if (ec_none) {
            co_return;
        }
        auto [ec_cmd, reply] = co_await anonymous->async_exec(redis::command("GET", "k"),
                                                              asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec_cmd, ResultCode::auth_failed);  // NOAUTH
        anonymous->close();

        config.password = "wrong";
        auto [ec_wrong, none] = co_await Connection::async_connect(
            io.get_executor(), config, asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec_wrong, ResultCode::auth_failed);  // WRONGPASS
        EXPECT_EQ(none, nullptr);

        config.password = "s3cret";
        auto good = co_await Connection::async_connect(io.get_executor(), config);
        EXPECT_EQ((co_await good->async_exec(redis::command("PING"))).text(), "PONG");
        good->close();
    });
}

TEST(RedisConnect, ClosedPortIsConnectFailed) {
    QuietLogger quiet;
    asio::io_context io;
    redis::ConnectionConfig config;
    config.port = free_loopback_port();  // nobody listens
    std::optional<error_code> result;
    Connection::async_connect(io.get_executor(), config,
                              [&](error_code ec, std::shared_ptr<Connection>) { result = ec; });
    io.run_for(10s);
    ASSERT_TRUE(result);
    EXPECT_EQ(*result, ResultCode::connect_failed);
}

TEST(RedisConnect, SilentServerIsATimeoutWithinTheConfiguredTime) {
    QuietLogger quiet;
    asio::io_context io;
    // Accepts, then never answers AUTH.
    FakeServer silent(io, [](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
        std::string sink;
        co_await asio::async_read(socket, asio::dynamic_buffer(sink),
                                  asio::as_tuple(asio::use_awaitable));
    });
    auto config = silent.config();
    config.password = "x";
    config.connect_timeout = 100ms;
    std::optional<error_code> result;
    const auto start = std::chrono::steady_clock::now();
    Connection::async_connect(io.get_executor(), config,
                              [&](error_code ec, std::shared_ptr<Connection>) {
                                  result = ec;
                                  silent.stop();
                              });
    io.run_for(10s);
    ASSERT_TRUE(result);
    EXPECT_EQ(*result, ResultCode::timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RedisConfig, InvalidConfigIsRejectedNamingTheField) {
    asio::io_context io;
    auto expect_rejected = [&](redis::ConnectionConfig config, const std::string& field) {
        try {
            Connection::async_connect(io.get_executor(), config, asio::detached);
            ADD_FAILURE() << field << " accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
        }
    };
    redis::ConnectionConfig c;
    c.host = "";
    expect_rejected(c, "host");
    c = {};
    c.port = 0;
    expect_rejected(c, "port");
    c = {};
    c.database = -1;
    expect_rejected(c, "database");
    c = {};
    c.connect_timeout = 0s;
    expect_rejected(c, "connect_timeout");
    c = {};
    c.max_reply_bytes = 0;
    expect_rejected(c, "max_reply_bytes");
}

// ---- hostile servers ----------------------------------------------------------------------------

// Connects to a fake server that answers the first command with `response` (then, if
// `close_after`, hangs up), and returns what the command completed with.
std::pair<error_code, bool> exec_against(std::string response, bool close_after,
                                         std::size_t max_reply_bytes = 64 * 1024 * 1024) {
    asio::io_context io;
    FakeServer fake(
        io, [response, close_after](asio::ip::tcp::socket socket) -> asio::awaitable<void> {
            std::string request;
            co_await asio::async_read_until(socket, asio::dynamic_buffer(request), "\r\n",
                                            asio::as_tuple(asio::use_awaitable));
            co_await asio::async_write(socket, asio::buffer(response),
                                       asio::as_tuple(asio::use_awaitable));
            if (!close_after) {
                std::string sink;
                co_await asio::async_read(socket, asio::dynamic_buffer(sink),
                                          asio::as_tuple(asio::use_awaitable));
            }
        });
    auto config = fake.config();
    config.max_reply_bytes = max_reply_bytes;
    std::optional<error_code> result;
    bool still_connected = true;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto c = co_await Connection::async_connect(io.get_executor(), config);
            auto [ec, reply] = co_await c->async_exec(redis::command("GET", "k"),
                                                      asio::as_tuple(asio::use_awaitable));
            result = ec;
            // A command after it fails at once instead of hanging, or taking a reply that was
            // already there when it was issued.
            auto [ec2, reply2] =
                co_await c->async_exec(redis::command("PING"), asio::as_tuple(asio::use_awaitable));
            EXPECT_TRUE(ec2);
            still_connected = c->is_connected();
            fake.stop();
        },
        asio::detached);
    io.run_for(10s);
    EXPECT_TRUE(result.has_value()) << "the command hung";
    return {result.value_or(error_code{}), still_connected};
}

TEST(RedisHostile, GarbageIsAProtocolErrorAndClosesTheConnection) {
    QuietLogger quiet;
    auto [ec, connected] = exec_against("hello, I am not redis\r\n", false);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_FALSE(connected);
}

TEST(RedisHostile, TruncatedReplyIsAProtocolError) {
    QuietLogger quiet;
    auto [ec, connected] = exec_against("$10\r\nabc", true);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_FALSE(connected);
}

TEST(RedisHostile, OversizedBulkStringIsRefusedBeforeItIsBuffered) {
    QuietLogger quiet;
    std::string huge = "$100000\r\n" + std::string(100000, 'x') + "\r\n";
    auto [ec, connected] = exec_against(huge, false, 4096);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_FALSE(connected);
}

TEST(RedisHostile, HugeDeclaredArrayIsRefusedWithoutAllocatingIt) {
    QuietLogger quiet;
    auto [ec, connected] = exec_against("*2000000000\r\n", false, 4096);
    EXPECT_EQ(ec, ResultCode::protocol_error);
    EXPECT_FALSE(connected);
}

TEST(RedisHostile, DeepNestingIsAProtocolError) {
    QuietLogger quiet;
    std::string nested;
    for (int i = 0; i < 40; ++i) {  // deeper than the parser's 32 levels
        nested += "*1\r\n";
    }
    nested += ":1\r\n";
    auto [ec, connected] = exec_against(nested, false);
    EXPECT_EQ(ec, ResultCode::protocol_error);
}

TEST(RedisHostile, UnsolicitedReplyIsAProtocolError) {
    QuietLogger quiet;
    auto [ec, connected] = exec_against("+OK\r\n+OK\r\n", false);
    // The first reply answers GET; the second one nobody asked for closes the connection, so the
    // follow-up PING fails instead of being matched with a stale reply.
    EXPECT_FALSE(ec);
    EXPECT_FALSE(connected);
}

// ---- server going away ------------------------------------------------------------------------

TEST(RedisRestart, StoppedServerFailsPendingAndLaterCommandsWithIoError) {
    QuietLogger quiet;
    RedisServer server;
    asio::io_context io;
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        auto c = co_await Connection::async_connect(io.get_executor(), server.config());
        EXPECT_EQ((co_await c->async_exec(redis::command("PING"))).text(), "PONG");
        // A command blocked on the server while it goes away.
        std::optional<error_code> blocked;
        c->async_exec(redis::command("BLPOP", "restart:never", "0"),
                      [&](error_code ec, Reply) { blocked = ec; });
        asio::steady_timer settle(io, 20ms);
        co_await settle.async_wait(asio::use_awaitable);
        server.stop();
        asio::steady_timer wait(io, 200ms);
        co_await wait.async_wait(asio::use_awaitable);
        EXPECT_TRUE(blocked);
        EXPECT_EQ(blocked.value_or(error_code{}), ResultCode::io_error);
        EXPECT_FALSE(c->is_connected());
        auto [ec, reply] =
            co_await c->async_exec(redis::command("PING"), asio::as_tuple(asio::use_awaitable));
        EXPECT_EQ(ec, ResultCode::io_error);
        server.start();
        auto fresh = co_await Connection::async_connect(io.get_executor(), server.config());
        EXPECT_EQ((co_await fresh->async_exec(redis::command("PING"))).text(), "PONG");
        fresh->close();
    });
}

// ---- with the pool ----------------------------------------------------------------------------

TEST_F(RedisConnectionTest, PlugsIntoKeyedClientPoolKeyedByEndpoint) {
    const auto config = server_->config();
    KeyedClientPool<std::string, Connection> pool(
        io_.get_executor(), [&](const std::string& endpoint) {
            auto c = config;
            c.host = endpoint.substr(0, endpoint.find(':'));
            c.port = static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.find(':') + 1)));
            return Connection::async_connect(io_.get_executor(), c);
        });
    const std::string endpoint = "127.0.0.1:" + std::to_string(config.port);
    run_coroutine(io_, [&]() -> asio::awaitable<void> {
        std::vector<std::shared_ptr<Connection>> got;
        for (int i = 0; i < 20; ++i) {
            got.push_back(co_await pool.async_get(endpoint));
        }
        for (auto& c : got) {
            EXPECT_EQ(c, got.front());
        }
        EXPECT_EQ(pool.stats().builds, 1u);
        // A closed connection is unhealthy: the pool replaces it.
        got.front()->close();
        auto replaced = co_await pool.async_get(endpoint);
        EXPECT_NE(replaced, got.front());
        EXPECT_TRUE(replaced->is_connected());
        co_await pool.async_shutdown();
        EXPECT_FALSE(replaced->is_connected());
        EXPECT_EQ(pool.stats().closes, pool.stats().builds);
    });
}

// async_wait_closed: a subscriber learns at once that its connection (and its subscriptions) is
// gone — by close(), by the server going away — and a late waiter is told at once.
TEST(RedisWaitClosed, CompletesWhenTheConnectionCloseOrFailsAndAtOnceAfterwards) {
    QuietLogger quiet;
    RedisServer server;
    asio::io_context io;
    std::shared_ptr<Connection> by_close;
    std::shared_ptr<Connection> by_server;
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        by_close = co_await Connection::async_connect(io.get_executor(), server.config());
        by_server = co_await Connection::async_connect(io.get_executor(), server.config());
    });
    std::optional<error_code> closed, failed, late;
    by_close->async_wait_closed([&](error_code ec) { closed = ec; });
    by_server->async_wait_closed([&](error_code ec) { failed = ec; });
    io.restart();
    io.poll();
    EXPECT_FALSE(closed);
    EXPECT_FALSE(failed) << "completed while the connection was fine";
    by_close->close();
    server.stop();
    run_coroutine(io, [&]() -> asio::awaitable<void> {
        asio::steady_timer timer(io);
        for (int i = 0; i < 2000 && !(closed && failed); ++i) {
            timer.expires_after(1ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
    });
    ASSERT_TRUE(closed && failed);
    EXPECT_EQ(*closed, asio::error::operation_aborted);
    EXPECT_EQ(*failed, ResultCode::io_error) << failed->message();
    by_server->async_wait_closed([&](error_code ec) { late = ec; });
    io.restart();
    io.poll();
    ASSERT_TRUE(late) << "a wait on a closed connection did not complete at once";
    EXPECT_EQ(*late, ResultCode::io_error);
}

}  // namespace
}  // namespace keyedpool::test
