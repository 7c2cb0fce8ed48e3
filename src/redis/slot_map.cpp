// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "slot_map.hpp"

#include <algorithm>
#include <charconv>

namespace keyedpool::redis::detail {

namespace {

/// A node entry: [host, port, id, ...]. Empty host or "?": the node asked.
bool read_node(const Reply& entry, const Endpoint& asked, Endpoint& out) {
    if (entry.type() != ReplyType::array || entry.elements().size() < 2) {
        return false;
    }
    const auto& host = entry.elements()[0];
    const auto& port = entry.elements()[1];
    if ((host.type() != ReplyType::string && host.type() != ReplyType::status) ||
        port.type() != ReplyType::integer || port.as_integer() <= 0 || port.as_integer() > 65535) {
        return false;
    }
    out.host = host.text().empty() || host.text() == "?" ? asked.host : host.text();
    out.port = static_cast<std::uint16_t>(port.as_integer());
    return true;
}

}  // namespace

bool SlotMap::complete() const noexcept {
    return std::none_of(owner.begin(), owner.end(), [](std::int16_t i) { return i < 0; });
}

boost::system::error_code parse_cluster_slots(const Reply& reply, const Endpoint& asked,
                                              SlotMap& map) {
    map = SlotMap{};
    if (reply.type() != ReplyType::array) {
        return ResultCode::protocol_error;
    }
    for (const auto& range : reply.elements()) {
        const auto& e = range.elements();
        if (range.type() != ReplyType::array || e.size() < 3 || e[0].type() != ReplyType::integer ||
            e[1].type() != ReplyType::integer) {
            return ResultCode::protocol_error;
        }
        const auto first = e[0].as_integer();
        const auto last = e[1].as_integer();
        if (first < 0 || last < first || last >= cluster_slot_count) {
            return ResultCode::protocol_error;
        }
        Endpoint primary;
        if (!read_node(e[2], asked, primary)) {
            return ResultCode::protocol_error;
        }
        auto it = std::find(map.primaries.begin(), map.primaries.end(), primary);
        if (it == map.primaries.end()) {
            if (map.primaries.size() >= 32767) {
                return ResultCode::protocol_error;
            }
            map.primaries.push_back(primary);
            map.replicas.emplace_back();
            it = map.primaries.end() - 1;
            for (std::size_t r = 3; r < e.size(); ++r) {
                Endpoint replica;
                if (!read_node(e[r], asked, replica)) {
                    return ResultCode::protocol_error;
                }
                map.replicas.back().push_back(std::move(replica));
            }
        }
        const auto index = static_cast<std::int16_t>(it - map.primaries.begin());
        std::fill(map.owner.begin() + first, map.owner.begin() + last + 1, index);
    }
    return {};
}

namespace {

template <typename Number>
bool read_number(std::string_view text, Number& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

}  // namespace

std::optional<Redirect> parse_redirect(std::string_view text, const Endpoint& asked) {
    std::string_view rest;
    if (text.rfind("MOVED ", 0) == 0) {
        rest = text.substr(6);
    } else if (text.rfind("ASK ", 0) == 0) {
        rest = text.substr(4);
    } else {
        return std::nullopt;
    }
    const auto space = rest.find(' ');
    const auto colon = rest.rfind(':');
    if (space == std::string_view::npos || colon == std::string_view::npos || colon < space) {
        return std::nullopt;
    }
    Redirect redirect;
    unsigned slot = 0;
    unsigned port = 0;
    if (!read_number(rest.substr(0, space), slot) || slot >= cluster_slot_count ||
        !read_number(rest.substr(colon + 1), port) || port == 0 || port > 65535) {
        return std::nullopt;
    }
    redirect.slot = static_cast<std::uint16_t>(slot);
    std::string_view host = rest.substr(space + 1, colon - space - 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    redirect.node.host = host.empty() ? asked.host : std::string(host);
    redirect.node.port = static_cast<std::uint16_t>(port);
    return redirect;
}

}  // namespace keyedpool::redis::detail
