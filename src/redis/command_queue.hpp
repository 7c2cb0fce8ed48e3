// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_COMMAND_QUEUE_HPP
#define KEYEDPOOL_SRC_REDIS_COMMAND_QUEUE_HPP

#include <keyedpool/redis/reply.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace keyedpool::redis::detail {

using ExecHandler = boost::asio::any_completion_handler<void(boost::system::error_code, Reply)>;

/// `to = std::move(from)`. Boost 1.81's move assignment of `any_completion_handler` recurses
/// without end (it constructs from the lvalue through its converting constructor, which wraps the
/// handler in another one): move-construct and swap instead.
inline void move_handler(ExecHandler& to, ExecHandler& from) noexcept {
    ExecHandler taken(std::move(from));
    to.swap(taken);
}

/// The commands of one connection in the order they were issued: first those written (each waits
/// for its reply, which arrive in the same order), then those not written yet. Touched only on the
/// connection's strand.
///
/// A command cancelled before it is written is dropped: it never reaches the server. One
/// cancelled after it was written stays in line without its handler ("abandoned"): its reply is
/// read and dropped when it comes, so the replies after it still match their commands.
class CommandQueue {
  public:
    using clock = std::chrono::steady_clock;

    struct Command {
        std::uint64_t id = 0;
        ExecHandler handler;  // empty: abandoned, or the connection's own (no one to tell)
        std::string payload;  // RESP, until written
        clock::time_point deadline = clock::time_point::max();

        Command(std::uint64_t i, ExecHandler h, std::string p, clock::time_point d) noexcept
            : id(i), handler(std::move(h)), payload(std::move(p)), deadline(d) {}
        Command(Command&&) noexcept = default;
        Command& operator=(Command&& other) noexcept {  // see move_handler
            id = other.id;
            move_handler(handler, other.handler);
            payload = std::move(other.payload);
            deadline = other.deadline;
            return *this;
        }
    };

    bool empty() const noexcept { return commands_.empty(); }
    std::size_t size() const noexcept { return commands_.size(); }
    bool has_unwritten() const noexcept { return written_ < commands_.size(); }

    void push(Command command) { commands_.push_back(std::move(command)); }

    /// Appends the payload of every command not written yet to `out`; they count as written from
    /// now on (a cancellation can no longer take them back).
    void take_unwritten(std::string& out) {
        for (; written_ < commands_.size(); ++written_) {
            out += commands_[written_].payload;
            std::string().swap(commands_[written_].payload);
        }
    }

    /// Takes the oldest written command, whose reply just arrived. False when no written command
    /// waits (a reply nobody asked for).
    bool pop_answered(ExecHandler& handler) {
        if (written_ == 0) {
            return false;
        }
        move_handler(handler, commands_.front().handler);
        commands_.pop_front();
        --written_;
        return true;
    }

    /// A cancellation of command `id` of `type`: the handler to complete with
    /// `operation_aborted`, or an empty one when there is nothing to do (the command already
    /// completed, or only a `total` cancellation arrived for a command the server may have run).
    ExecHandler cancel(std::uint64_t id, boost::asio::cancellation_type type) {
        using boost::asio::cancellation_type;
        auto it = std::find_if(commands_.begin(), commands_.end(),
                               [id](const Command& c) { return c.id == id; });
        if (it == commands_.end() || !it->handler) {
            return {};
        }
        ExecHandler handler;
        if (static_cast<std::size_t>(it - commands_.begin()) >= written_) {
            move_handler(handler, it->handler);  // not sent: no side effect at all
            commands_.erase(it);
        } else if ((type & (cancellation_type::terminal | cancellation_type::partial)) !=
                   cancellation_type::none) {
            move_handler(handler, it->handler);  // sent: the server may run it; drop the reply
        }
        return handler;
    }

    /// The earliest deadline of a command still in line (they are issued in deadline order).
    clock::time_point oldest_deadline() const noexcept {
        return commands_.empty() ? clock::time_point::max() : commands_.front().deadline;
    }

    /// Empties the queue; the handlers still waiting, oldest first.
    std::vector<ExecHandler> take_all() {
        std::vector<ExecHandler> handlers;
        handlers.reserve(commands_.size());
        for (auto& command : commands_) {
            if (command.handler) {
                handlers.push_back(std::move(command.handler));
            }
        }
        commands_.clear();
        written_ = 0;
        return handlers;
    }

  private:
    std::deque<Command> commands_;
    std::size_t written_ = 0;  // the first `written_` commands are on the wire
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_COMMAND_QUEUE_HPP
