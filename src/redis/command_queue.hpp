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
/// A command cancelled (or past its caller's deadline) before it is written is dropped: it never
/// reaches the server. One cancelled after it was written stays in line without its handler
/// ("abandoned"): its reply is read and dropped when it comes, so the replies after it still match
/// their commands.
class CommandQueue {
  public:
    using clock = std::chrono::steady_clock;

    struct Command {
        std::uint64_t id = 0;
        ExecHandler handler;  // empty: abandoned, or the connection's own (no one to tell)
        std::string payload;  // RESP, until written
        clock::time_point deadline = clock::time_point::max();         // command_timeout
        clock::time_point caller_deadline = clock::time_point::max();  // async_exec_until
        // Replies to read and drop before the command's own: the payload starts with that many
        // commands of the connection's own (ASKING before a command redirected by ASK), written
        // and cancelled together with it.
        std::uint8_t leading_replies = 0;

        Command(std::uint64_t i, ExecHandler h, std::string p, clock::time_point d,
                clock::time_point caller, std::uint8_t leading = 0) noexcept
            : id(i),
              handler(std::move(h)),
              payload(std::move(p)),
              deadline(d),
              caller_deadline(caller),
              leading_replies(leading) {}
        Command(Command&&) noexcept = default;
        Command& operator=(Command&& other) noexcept {  // see move_handler
            id = other.id;
            move_handler(handler, other.handler);
            payload = std::move(other.payload);
            deadline = other.deadline;
            caller_deadline = other.caller_deadline;
            leading_replies = other.leading_replies;
            return *this;
        }
    };

    bool empty() const noexcept { return commands_.empty(); }
    std::size_t size() const noexcept { return commands_.size(); }
    bool has_unwritten() const noexcept { return written_ < commands_.size(); }
    /// How many written commands wait for their replies.
    std::size_t written_count() const noexcept { return written_; }

    void push(Command command) {
        next_caller_deadline_ = std::min(next_caller_deadline_, command.caller_deadline);
        commands_.push_back(std::move(command));
    }

    /// Appends the payload of every command not written yet to `out`; they count as written from
    /// now on (a cancellation can no longer take them back).
    void take_unwritten(std::string& out) {
        for (; written_ < commands_.size(); ++written_) {
            out += commands_[written_].payload;
            std::string().swap(commands_[written_].payload);
        }
    }

    /// What a reply that just arrived answered.
    enum class Answered { nothing, leading, command };

    /// Takes the oldest written command when the reply that just arrived is its own (`command`);
    /// `leading` when it answers one of the commands written ahead of it (dropped); `nothing`
    /// when no written command waits (a reply nobody asked for).
    Answered pop_answered(ExecHandler& handler) {
        if (written_ == 0) {
            return Answered::nothing;
        }
        if (commands_.front().leading_replies > 0) {
            --commands_.front().leading_replies;
            return Answered::leading;
        }
        move_handler(handler, commands_.front().handler);
        commands_.pop_front();
        --written_;
        return Answered::command;
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

    /// The earliest `command_timeout` deadline in line (they are issued in deadline order).
    clock::time_point oldest_deadline() const noexcept {
        return commands_.empty() ? clock::time_point::max() : commands_.front().deadline;
    }

    /// No caller's deadline in line is earlier than this (it may be earlier than the earliest
    /// one: it is exact again after `expire`).
    clock::time_point next_caller_deadline() const noexcept { return next_caller_deadline_; }

    /// Takes out the handlers of the commands whose caller's deadline has passed, to complete with
    /// `ResultCode::timeout`: as a cancellation, an unwritten command is dropped and a written one
    /// stays in line without its handler.
    std::vector<ExecHandler> expire(clock::time_point now) {
        std::vector<ExecHandler> expired;
        next_caller_deadline_ = clock::time_point::max();
        for (std::size_t i = 0; i < commands_.size();) {
            Command& command = commands_[i];
            if (!command.handler || command.caller_deadline == clock::time_point::max()) {
                ++i;
            } else if (command.caller_deadline > now) {
                next_caller_deadline_ = std::min(next_caller_deadline_, command.caller_deadline);
                ++i;
            } else {
                expired.emplace_back(std::move(command.handler));
                if (i >= written_) {
                    commands_.erase(commands_.begin() + static_cast<std::ptrdiff_t>(i));
                } else {
                    ++i;
                }
            }
        }
        return expired;
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
        next_caller_deadline_ = clock::time_point::max();
        return handlers;
    }

  private:
    std::deque<Command> commands_;
    std::size_t written_ = 0;  // the first `written_` commands are on the wire
    clock::time_point next_caller_deadline_ = clock::time_point::max();
};

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_COMMAND_QUEUE_HPP
