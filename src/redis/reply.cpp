// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/reply.hpp>

#include <array>
#include <utility>

namespace keyedpool::redis {

ServerError classify_server_error(std::string_view error_text) noexcept {
    const auto space = error_text.find(' ');
    const std::string_view word = error_text.substr(0, space);
    static constexpr std::array<std::pair<std::string_view, ServerError>, 18> words{{
        {"ERR", ServerError::err},
        {"WRONGTYPE", ServerError::wrongtype},
        {"NOAUTH", ServerError::noauth},
        {"WRONGPASS", ServerError::wrongpass},
        {"NOPERM", ServerError::noperm},
        {"LOADING", ServerError::loading},
        {"BUSY", ServerError::busy},
        {"TRYAGAIN", ServerError::tryagain},
        {"MASTERDOWN", ServerError::masterdown},
        {"CLUSTERDOWN", ServerError::clusterdown},
        {"READONLY", ServerError::readonly},
        {"OOM", ServerError::oom},
        {"MISCONF", ServerError::misconf},
        {"NOSCRIPT", ServerError::noscript},
        {"EXECABORT", ServerError::execabort},
        {"MOVED", ServerError::moved},
        {"ASK", ServerError::ask},
        {"CROSSSLOT", ServerError::crossslot},
    }};
    for (const auto& [name, kind] : words) {
        if (word == name) {
            return kind;
        }
    }
    return ServerError::other;
}

boost::system::error_code to_error_code(ServerError kind) noexcept {
    switch (kind) {
        case ServerError::none:
            return {};
        case ServerError::noauth:
        case ServerError::wrongpass:
            return ResultCode::auth_failed;
        case ServerError::noperm:
            return ResultCode::forbidden;
        case ServerError::loading:
        case ServerError::busy:
        case ServerError::tryagain:
        case ServerError::masterdown:
        case ServerError::clusterdown:
        case ServerError::readonly:
        case ServerError::oom:
        case ServerError::misconf:
            return ResultCode::server_busy;
        default:
            return ResultCode::server_error;
    }
}

Reply Reply::integer(long long value) {
    Reply r;
    r.type_ = ReplyType::integer;
    r.integer_ = value;
    return r;
}

Reply Reply::status(std::string text) {
    Reply r;
    r.type_ = ReplyType::status;
    r.text_ = std::move(text);
    return r;
}

Reply Reply::string(std::string bytes) {
    Reply r;
    r.type_ = ReplyType::string;
    r.text_ = std::move(bytes);
    return r;
}

Reply Reply::array(std::vector<Reply> elements) {
    Reply r;
    r.type_ = ReplyType::array;
    r.elements_ = std::move(elements);
    return r;
}

Reply Reply::error(std::string text) {
    Reply r;
    r.type_ = ReplyType::error;
    r.server_error_ = classify_server_error(text);
    r.text_ = std::move(text);
    return r;
}

}  // namespace keyedpool::redis
