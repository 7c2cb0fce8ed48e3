// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "command_keys.hpp"

#include <keyedpool/redis/cluster.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace keyedpool::redis::detail {

namespace {

enum class KeyRule { first, none, all, every_other, two, all_but_last, numkeys };

std::string upper(std::string_view name) {
    std::string out(name);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

KeyRule rule_of(std::string_view name) {
    struct Entry {
        std::string_view name;
        KeyRule rule;
    };
    static constexpr std::array<Entry, 45> rules{{
        {"ASKING", KeyRule::none},
        {"AUTH", KeyRule::none},
        {"BLPOP", KeyRule::all_but_last},
        {"BRPOP", KeyRule::all_but_last},
        {"CLIENT", KeyRule::none},
        {"CLUSTER", KeyRule::none},
        {"COMMAND", KeyRule::none},
        {"CONFIG", KeyRule::none},
        {"COPY", KeyRule::two},
        {"DBSIZE", KeyRule::none},
        {"DEL", KeyRule::all},
        {"ECHO", KeyRule::none},
        {"EVAL", KeyRule::numkeys},
        {"EVALSHA", KeyRule::numkeys},
        {"EVALSHA_RO", KeyRule::numkeys},
        {"EVAL_RO", KeyRule::numkeys},
        {"EXISTS", KeyRule::all},
        {"FCALL", KeyRule::numkeys},
        {"FCALL_RO", KeyRule::numkeys},
        {"FLUSHALL", KeyRule::none},
        {"FLUSHDB", KeyRule::none},
        {"HELLO", KeyRule::none},
        {"INFO", KeyRule::none},
        {"LMOVE", KeyRule::two},
        {"MGET", KeyRule::all},
        {"MSET", KeyRule::every_other},
        {"MSETNX", KeyRule::every_other},
        {"PFCOUNT", KeyRule::all},
        {"PING", KeyRule::none},
        {"PUBLISH", KeyRule::none},
        {"READONLY", KeyRule::none},
        {"READWRITE", KeyRule::none},
        {"RENAME", KeyRule::two},
        {"RENAMENX", KeyRule::two},
        {"ROLE", KeyRule::none},
        {"RPOPLPUSH", KeyRule::two},
        {"SCRIPT", KeyRule::none},
        {"SDIFF", KeyRule::all},
        {"SINTER", KeyRule::all},
        {"SMOVE", KeyRule::two},
        {"SSUBSCRIBE", KeyRule::all},
        {"SUNION", KeyRule::all},
        {"SUNSUBSCRIBE", KeyRule::all},
        {"TOUCH", KeyRule::all},
        {"UNLINK", KeyRule::all},
    }};
    const std::string key = upper(name);
    const auto it =
        std::lower_bound(rules.begin(), rules.end(), key,
                         [](const Entry& e, const std::string& k) { return e.name < k; });
    if (it != rules.end() && it->name == key) {
        return it->rule;
    }
    if (key == "TIME" || key == "WAIT" || key == "SUBSCRIBE" || key == "UNSUBSCRIBE" ||
        key == "PSUBSCRIBE" || key == "PUNSUBSCRIBE" || key == "MULTI" || key == "EXEC" ||
        key == "DISCARD" || key == "LASTSAVE" || key == "SELECT" || key == "QUIT" ||
        key == "RESET" || key == "FUNCTION" || key == "ACL") {
        return KeyRule::none;
    }
    return KeyRule::first;
}

}  // namespace

CommandKeys command_keys(const std::vector<std::string>& command) {
    CommandKeys result;
    if (command.empty()) {
        result.ec = ResultCode::invalid_argument;
        return result;
    }
    const auto n = command.size();
    switch (rule_of(command[0])) {
        case KeyRule::none:
            break;
        case KeyRule::first:
            if (n > 1) {
                result.keys.push_back(command[1]);
            }
            break;
        case KeyRule::all:
            for (std::size_t i = 1; i < n; ++i) {
                result.keys.push_back(command[i]);
            }
            break;
        case KeyRule::every_other:
            for (std::size_t i = 1; i < n; i += 2) {
                result.keys.push_back(command[i]);
            }
            break;
        case KeyRule::two:
            for (std::size_t i = 1; i < std::min<std::size_t>(n, 3); ++i) {
                result.keys.push_back(command[i]);
            }
            break;
        case KeyRule::all_but_last:
            for (std::size_t i = 1; i + 1 < n; ++i) {
                result.keys.push_back(command[i]);
            }
            break;
        case KeyRule::numkeys: {
            std::size_t count = 0;
            if (n < 3) {
                result.ec = ResultCode::invalid_argument;
                break;
            }
            const auto& text = command[2];
            const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), count);
            if (err != std::errc{} || end != text.data() + text.size() || count > n - 3) {
                result.ec = ResultCode::invalid_argument;
                break;
            }
            for (std::size_t i = 0; i < count; ++i) {
                result.keys.push_back(command[3 + i]);
            }
            break;
        }
    }
    return result;
}

CommandSlot command_slot(const std::vector<std::string>& command) {
    auto [ec, keys] = command_keys(command);
    if (ec) {
        return {ec, std::nullopt};
    }
    std::optional<std::uint16_t> slot;
    for (const auto key : keys) {
        const auto s = hash_slot(key);
        if (slot && *slot != s) {
            return {ResultCode::invalid_argument, std::nullopt};  // CROSSSLOT
        }
        slot = s;
    }
    return {{}, slot};
}

}  // namespace keyedpool::redis::detail
