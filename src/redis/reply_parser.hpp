// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP
#define KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP

#include <keyedpool/redis/reply.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyedpool::redis::detail {

/// An incremental RESP2 reader building `Reply` values.
///
/// Memory is bounded by `max_reply_bytes` for any input. A reply's cost is the bytes it takes on
/// the wire plus what its value holds on the heap (string bytes, and `sizeof(Reply)` per array
/// element). Every declared size is checked against what is left of the budget *before* anything
/// is allocated or waited for: an array header (`*N`) reserves its N elements, a bulk header
/// (`$N`) its N bytes, and a header line still missing its CRLF counts what is buffered. Going
/// over the limit, malformed input, or arrays nested deeper than `max_depth` put the parser in a
/// failed state: `next` then reports `protocol_error` for good (the connection must be closed).
class ReplyParser {
  public:
    /// Deepest array nesting accepted (Redis's own replies nest at most a few levels). It also
    /// bounds the recursion of destroying or comparing a `Reply`.
    static constexpr std::size_t max_depth = 32;

    explicit ReplyParser(std::size_t max_reply_bytes);

    /// Appends received bytes.
    void feed(std::string_view bytes);

    /// The next complete reply, if any. On failure sets `ec` to `protocol_error` and `error_text`.
    std::optional<Reply> next(boost::system::error_code& ec);

    const std::string& error_text() const noexcept { return error_text_; }

    /// True while part of a reply has been received but not all of it.
    bool has_partial_reply() const noexcept;

  private:
    /// An array being filled: its value and how many elements it still expects.
    struct Open {
        Reply array;
        std::size_t missing = 0;
    };

    enum class Item {
        more,    ///< more bytes are needed (or the parser failed)
        value,   ///< a scalar or an empty array was read into `value`
        opened,  ///< an array header was read: pushed on `open_`
    };
    /// Reads one item at `pos_`.
    Item read_item(Reply& value);
    /// Adds `bytes` to the current reply's cost; false (and fails) when over the budget.
    bool charge(std::size_t bytes, const char* what);
    void fail(std::string why);
    Item failed_item(std::string why);

    std::size_t max_reply_bytes_;
    std::string buffer_;
    std::size_t pos_ = 0;   // first byte not consumed
    std::size_t cost_ = 0;  // of the reply being read
    std::vector<Open> open_;
    std::string error_text_;
    bool failed_ = false;
};

/// The RESP2 encoding of a command: an array of bulk strings.
std::string format_command(const std::vector<std::string>& arguments);

}  // namespace keyedpool::redis::detail

#endif  // KEYEDPOOL_SRC_REDIS_REPLY_PARSER_HPP
