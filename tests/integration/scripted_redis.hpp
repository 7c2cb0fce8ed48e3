// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_TESTS_SCRIPTED_REDIS_HPP
#define KEYEDPOOL_TESTS_SCRIPTED_REDIS_HPP

#include "redis/reply_parser.hpp"  // the library's own RESP reader parses the client's commands

#include <keyedpool/redis/connection.hpp>

#include <boost/asio.hpp>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keyedpool::test {

/// A fake Redis on 127.0.0.1 for servers that misbehave on cue: each command a client sends is
/// parsed and handed to `answer`, whose result is written back as is. `std::nullopt` stalls that
/// connection: neither this command nor any later one is answered (a stopped or stuck server),
/// though its bytes are still read and counted.
class ScriptedRedis {
  public:
    using Command = std::vector<std::string>;
    using Answer = std::function<std::optional<std::string>(const Command&)>;

    ScriptedRedis(boost::asio::io_context& io, Answer answer)
        : acceptor_(io, {boost::asio::ip::make_address("127.0.0.1"), 0}),
          state_(std::make_shared<State>()) {
        state_->answer = std::move(answer);
        boost::asio::co_spawn(io, accept_loop(), boost::asio::detached);
    }
    ~ScriptedRedis() { acceptor_.close(); }

    redis::ConnectionConfig config() const {
        redis::ConnectionConfig config;
        config.port = acceptor_.local_endpoint().port();
        return config;
    }

    /// Commands received so far (answered or not), in arrival order over all connections.
    const std::vector<Command>& received() const { return state_->received; }

  private:
    struct State {
        Answer answer;
        std::vector<Command> received;
    };

    boost::asio::awaitable<void> accept_loop() {
        namespace asio = boost::asio;
        for (;;) {
            auto [ec, socket] =
                co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket), state_),
                           asio::detached);
        }
    }

    static boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket,
                                              std::shared_ptr<State> state) {
        namespace asio = boost::asio;
        redis::detail::ReplyParser parser(64 * 1024 * 1024);
        bool stalled = false;
        std::array<char, 16 * 1024> buffer{};
        for (;;) {
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer),
                                                           asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            parser.feed({buffer.data(), n});
            boost::system::error_code parse_ec;
            while (auto request = parser.next(parse_ec)) {
                Command command;
                for (const auto& argument : request->elements()) {
                    command.push_back(argument.text());
                }
                state->received.push_back(command);
                if (stalled) {
                    continue;
                }
                auto answer = state->answer(command);
                if (!answer) {
                    stalled = true;
                    continue;
                }
                co_await asio::async_write(socket, asio::buffer(*answer),
                                           asio::as_tuple(asio::use_awaitable));
            }
            if (parse_ec) {
                co_return;
            }
        }
    }

    boost::asio::ip::tcp::acceptor acceptor_;
    std::shared_ptr<State> state_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_SCRIPTED_REDIS_HPP
