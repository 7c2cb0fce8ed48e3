// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP
#define KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP

#include <keyedpool/redis/reply.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace keyedpool::redis::detail {

/// RESP2 parser on hiredis's reader, building `Reply` values directly (own object functions).
///
/// Memory is bounded by `max_reply_bytes`: the bytes buffered for the reply being read plus the
/// size of its partly built value may not exceed it, and an array may not declare more elements
/// than could fit in it. Malformed input, nesting deeper than hiredis supports, or a reply over the
/// limit put the parser in a failed state: `next` then reports `protocol_error` for good (the
/// connection must be closed).
class ReplyParser {
  public:
    explicit ReplyParser(std::size_t max_reply_bytes);
    ~ReplyParser();
    ReplyParser(const ReplyParser&) = delete;
    ReplyParser& operator=(const ReplyParser&) = delete;

    /// Appends received bytes.
    void feed(std::string_view bytes);

    /// The next complete reply, if any. On failure sets `ec` to `protocol_error` and `error_text`.
    std::optional<Reply> next(boost::system::error_code& ec);

    const std::string& error_text() const noexcept { return error_text_; }

    /// True while part of a reply has been received but not all of it.
    bool has_partial_reply() const noexcept;

  private:
    friend struct ParserCallbacks;

    void fail(std::string why);

    std::size_t max_reply_bytes_;
    std::size_t partial_bytes_ = 0;  // size of the reply being built
    redisReader* reader_ = nullptr;
    std::string error_text_;
    bool failed_ = false;
};

/// The RESP2 encoding of a command (hiredis's formatter).
std::string format_command(const std::vector<std::string>& arguments);

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP
