// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/url.hpp>

#include <fmt/format.h>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <cctype>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <string>

namespace keyedpool::redis {

namespace urls = boost::urls;

namespace {

[[noreturn]] void refuse(std::string_view part, std::string_view why) {
    throw std::invalid_argument(fmt::format("Redis URL: {}: {}", part, why));
}

/// A non-negative decimal number fitting `T`, or refuses naming `part` (the text is quoted: it
/// never holds a secret, only a port or database number as written).
template <typename T>
T number(std::string_view text, std::string_view part, T min) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min) {
        refuse(part, fmt::format("'{}' is not a number in {}..{}", text, min,
                                 std::numeric_limits<T>::max()));
    }
    return value;
}

}  // namespace

ConnectionConfig parse_url(std::string_view url, ConnectionConfig defaults) {
    const auto parsed = urls::parse_uri(url);
    if (!parsed) {
        // Boost.URL's message names the grammar rule that failed, never the input.
        refuse("syntax", parsed.error().message());
    }
    const urls::url_view& u = *parsed;
    ConnectionConfig config = std::move(defaults);

    std::string scheme(u.scheme());  // schemes are case-insensitive (RFC 3986 3.1)
    for (char& c : scheme) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    const bool is_unix = scheme == "unix";
    if (scheme != "redis" && scheme != "rediss" && !is_unix) {
        refuse("scheme", fmt::format("must be redis, rediss or unix, got '{}'", scheme));
    }
    if (!u.has_authority()) {
        refuse("scheme", "must be followed by '//'");
    }
    if (u.has_fragment()) {
        refuse("fragment", "a '#...' part is not allowed");
    }

    if (u.has_userinfo()) {
        if (!u.has_password()) {
            refuse("user", "a user name needs a password (user:password@host)");
        }
        config.username = u.user();
        config.password = u.password();
        if (config.password.empty()) {
            refuse("password", "is empty (leave out 'user:@' to connect without AUTH)");
        }
    }

    if (is_unix) {
        if (!u.host().empty() || u.has_port()) {
            refuse("host", "a unix:// URL has no host or port: unix:///path/redis.sock");
        }
        if (u.path().empty() || u.path().front() != '/') {
            refuse("path", "the unix socket path is missing (unix:///path/redis.sock)");
        }
        config.unix_socket = u.path();
        config.tls.enabled = false;
        for (const auto& param : u.params()) {
            if (param.key != "db") {
                refuse("query", fmt::format("unknown parameter '{}' (only db=N)", param.key));
            }
            config.database = number<int>(param.value, "database", 0);
        }
        return config;
    }

    config.unix_socket.clear();
    config.tls.enabled = scheme == "rediss";
    if (u.host().empty()) {
        refuse("host", "is missing");
    }
    config.host = u.host_address();
    config.port = 6379;
    if (u.has_port()) {
        config.port = number<std::uint16_t>(u.port(), "port", 1);
    }
    const std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        if (path.front() != '/') {
            refuse("port", "must be a number");  // Boost.URL reads "host:abc" as an empty port
        }
        config.database = number<int>(path.substr(1), "database", 0);
    }
    if (u.has_query()) {
        refuse("query", "is not allowed here (the database goes in the path: redis://host/2)");
    }
    return config;
}

ConnectionConfig parse_url(std::string_view url) {
    return parse_url(url, ConnectionConfig{});
}

}  // namespace keyedpool::redis
