// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "reply_parser.hpp"

#include <fmt/format.h>

#include <charconv>

namespace keyedpool::redis::detail {

namespace {

/// A whole line as an integer (RESP2 lengths and integer replies); nothing else on the line.
std::optional<long long> parse_integer(std::string_view line) {
    long long value = 0;
    const auto* end = line.data() + line.size();
    auto [ptr, ec] = std::from_chars(line.data(), end, value);
    if (ec != std::errc{} || ptr != end || line.empty()) {
        return std::nullopt;
    }
    return value;
}

}  // namespace

ReplyParser::ReplyParser(std::size_t max_reply_bytes) : max_reply_bytes_(max_reply_bytes) {}

void ReplyParser::fail(std::string why) {
    failed_ = true;
    error_text_ = std::move(why);
    open_.clear();
    buffer_.clear();
    pos_ = 0;
}

ReplyParser::Item ReplyParser::failed_item(std::string why) {
    fail(std::move(why));
    return Item::more;
}

bool ReplyParser::charge(std::size_t bytes, const char* what) {
    if (bytes > max_reply_bytes_ - cost_) {  // cost_ <= max_reply_bytes_ always
        fail(fmt::format("{} would take the reply past max_reply_bytes ({} bytes)", what,
                         max_reply_bytes_));
        return false;
    }
    cost_ += bytes;
    return true;
}

void ReplyParser::feed(std::string_view bytes) {
    if (failed_) {
        return;
    }
    if (pos_ == buffer_.size()) {
        buffer_.clear();
        pos_ = 0;
    } else if (pos_ > buffer_.size() / 2) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(bytes);
}

ReplyParser::Item ReplyParser::read_item(Reply& value) {
    const std::string_view rest = std::string_view(buffer_).substr(pos_);
    const auto eol = rest.find("\r\n");
    if (eol == std::string_view::npos) {
        // A header line still arriving: what is buffered counts (a line without end cannot grow
        // the buffer past the budget).
        if (rest.size() > max_reply_bytes_ - cost_) {
            return failed_item(
                fmt::format("a line longer than max_reply_bytes ({} bytes)", max_reply_bytes_));
        }
        return Item::more;
    }
    if (eol == 0) {
        return failed_item("an empty line where a reply was expected");
    }
    const char type = rest[0];
    const std::string_view line = rest.substr(1, eol - 1);
    const std::size_t header = eol + 2;
    switch (type) {
        case '+':
        case '-': {
            if (!charge(header + line.size(), "a status or error line")) {
                return Item::more;
            }
            pos_ += header;
            value =
                type == '+' ? Reply::status(std::string(line)) : Reply::error(std::string(line));
            return Item::value;
        }
        case ':': {
            const auto number = parse_integer(line);
            if (!number) {
                return failed_item("an integer reply that is not a 64-bit integer");
            }
            if (!charge(header, "an integer")) {
                return Item::more;
            }
            pos_ += header;
            value = Reply::integer(*number);
            return Item::value;
        }
        case '$': {
            const auto length = parse_integer(line);
            if (!length || *length < -1) {
                return failed_item("a bulk string with an invalid length");
            }
            if (*length == -1) {
                if (!charge(header, "a nil")) {
                    return Item::more;
                }
                pos_ += header;
                value = Reply::nil();
                return Item::value;
            }
            const auto bytes = static_cast<unsigned long long>(*length);
            // On the wire (header, bytes, CRLF) and on the heap (the bytes): checked before
            // waiting for them.
            if (bytes > (max_reply_bytes_ - cost_) / 2 ||
                2 * bytes + header + 2 > max_reply_bytes_ - cost_) {
                return failed_item(
                    fmt::format("a bulk string of {} bytes is larger than max_reply_bytes "
                                "({} bytes)",
                                bytes, max_reply_bytes_));
            }
            const auto size = static_cast<std::size_t>(bytes);
            if (rest.size() < header + size + 2) {
                return Item::more;  // the header is read again when the rest has arrived
            }
            if (rest.substr(header + size, 2) != "\r\n") {
                return failed_item("a bulk string not followed by CRLF");
            }
            cost_ += 2 * size + header + 2;
            pos_ += header + size + 2;
            value = Reply::string(std::string(rest.substr(header, size)));
            return Item::value;
        }
        case '*': {
            const auto count = parse_integer(line);
            if (!count || *count < -1) {
                return failed_item("an array with an invalid length");
            }
            if (*count <= 0) {
                if (!charge(header, "an array")) {
                    return Item::more;
                }
                pos_ += header;
                value = *count == -1 ? Reply::nil() : Reply::array({});
                return Item::value;
            }
            const auto elements = static_cast<unsigned long long>(*count);
            // Its elements' slots are allocated up front: charged before.
            if (elements > (max_reply_bytes_ - cost_) / sizeof(Reply) ||
                header + elements * sizeof(Reply) > max_reply_bytes_ - cost_) {
                return failed_item(
                    fmt::format("an array of {} elements is larger than max_reply_bytes "
                                "({} bytes)",
                                elements, max_reply_bytes_));
            }
            if (open_.size() == max_depth) {
                return failed_item(fmt::format("arrays nested deeper than {} levels", max_depth));
            }
            cost_ += header + static_cast<std::size_t>(elements) * sizeof(Reply);
            pos_ += header;
            std::vector<Reply> slots;
            slots.reserve(static_cast<std::size_t>(elements));
            open_.push_back(
                Open{Reply::array(std::move(slots)), static_cast<std::size_t>(elements)});
            return Item::opened;
        }
        default:
            return failed_item(
                fmt::format("unexpected type byte 0x{:02x}", static_cast<unsigned char>(type)));
    }
}

std::optional<Reply> ReplyParser::next(boost::system::error_code& ec) {
    while (!failed_) {
        Reply value;
        const Item item = read_item(value);
        if (item == Item::more) {
            if (failed_) {
                break;
            }
            return std::nullopt;
        }
        if (item == Item::opened) {
            continue;
        }
        // Complete every array this value (an element, possibly itself a whole array) finishes.
        for (;;) {
            if (open_.empty()) {
                cost_ = 0;
                return std::optional<Reply>(std::move(value));
            }
            Open& parent = open_.back();
            parent.array.elements().push_back(std::move(value));
            if (--parent.missing != 0) {
                break;
            }
            value = std::move(parent.array);
            open_.pop_back();
        }
    }
    ec = ResultCode::protocol_error;
    return std::nullopt;
}

bool ReplyParser::has_partial_reply() const noexcept {
    return !failed_ && (pos_ < buffer_.size() || !open_.empty());
}

namespace {

/// Appends `prefix`, `n` in decimal and CRLF (a RESP header) without a format string.
void append_header(std::string& out, char prefix, std::size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out += prefix;
    out.append(digits, end);
    out += "\r\n";
}

}  // namespace

std::string format_command(const std::vector<std::string>& arguments) {
    std::size_t size = 16;
    for (const auto& argument : arguments) {
        size += argument.size() + 24;
    }
    std::string out;
    out.reserve(size);
    append_header(out, '*', arguments.size());
    for (const auto& argument : arguments) {
        append_header(out, '$', argument.size());
        out += argument;
        out += "\r\n";
    }
    return out;
}

}  // namespace keyedpool::redis::detail
