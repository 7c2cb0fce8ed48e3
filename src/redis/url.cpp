// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/url.hpp>

#include <keyedpool/redis/cluster_client.hpp>

#include <fmt/format.h>
#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <cctype>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace keyedpool::redis {

namespace urls = boost::urls;

namespace {

/// Schemes are case-insensitive (RFC 3986 3.1).
std::string lowercase(std::string_view text) {
    std::string lower(text);
    for (char& c : lower) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return lower;
}

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

namespace {

/// A list of hosts is not an RFC 3986 authority, so the URLs that take one (Sentinel, Cluster) are
/// cut by hand and each part parsed by Boost.URL.

/// Reads `user:password@` off the front of `authority` (when there) into `username`/`password`.
void read_userinfo(std::string_view& authority, std::string& username, std::string& password) {
    const auto at = authority.rfind('@');
    if (at == std::string_view::npos) {
        return;
    }
    // Parsed as the userinfo of a one-host URL, for its percent-decoding and checks.
    const std::string one_host =
        "redis://" + std::string(authority.substr(0, at + 1)) + "h";  // the view's storage
    const auto userinfo = urls::parse_uri(one_host);
    if (!userinfo) {
        refuse("user", "is not valid userinfo");
    }
    if (!userinfo->has_password()) {
        refuse("user", "a user name needs a password (user:password@host)");
    }
    username = userinfo->user();
    password = userinfo->password();
    if (password.empty()) {
        refuse("password", "is empty (leave out 'user:@' to connect without AUTH)");
    }
    authority = authority.substr(at + 1);
}

/// `host[:port][,host[:port]...]`, each a `what` (for messages), `port` when absent.
std::vector<Endpoint> read_hosts(std::string_view authority, std::uint16_t port,
                                 std::string_view what) {
    std::vector<Endpoint> hosts;
    while (!authority.empty()) {
        const auto comma = authority.find(',');
        const std::string_view one = authority.substr(0, comma);
        const auto host = urls::parse_authority(one);
        if (!host || host->host().empty() || host->has_userinfo()) {
            refuse("host", fmt::format("{} {} is not host:port", what, hosts.size() + 1));
        }
        Endpoint endpoint{host->host_address(), port};
        if (host->has_port()) {
            endpoint.port = number<std::uint16_t>(host->port(), "port", 1);
        }
        hosts.push_back(std::move(endpoint));
        authority =
            comma == std::string_view::npos ? std::string_view{} : authority.substr(comma + 1);
        if (comma != std::string_view::npos && authority.empty()) {
            refuse("host", fmt::format("a trailing ',' names no {}", what));
        }
    }
    if (hosts.empty()) {
        refuse("host", fmt::format("no {} is named", what));
    }
    return hosts;
}

/// `redis-sentinel://[[user]:password@]host:port[,host:port...]/master-name[/db]`.
ConnectionConfig parse_sentinel_url(std::string_view rest, ConnectionConfig config) {
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
        refuse("master name", "is missing (redis-sentinel://host:26379/mymaster)");
    }
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = rest.substr(slash + 1);
    read_userinfo(authority, config.username, config.password);
    config.sentinel.sentinels = read_hosts(authority, 26379, "sentinel");
    const auto db_slash = path.find('/');
    const std::string_view name = path.substr(0, db_slash);
    if (name.empty() || name.find_first_of("?#% ") != std::string_view::npos) {
        refuse("master name", "must be a plain name (redis-sentinel://host:26379/mymaster)");
    }
    config.sentinel.master_name = std::string(name);
    if (db_slash != std::string_view::npos) {
        config.database = number<int>(path.substr(db_slash + 1), "database", 0);
    }
    config.unix_socket.clear();
    return config;
}

}  // namespace

ClusterConfig parse_cluster_url(std::string_view url, ClusterConfig defaults) {
    constexpr std::string_view plain = "redis-cluster://";
    constexpr std::string_view tls = "rediss-cluster://";
    std::string_view rest;
    if (lowercase(url.substr(0, plain.size())) == plain) {
        rest = url.substr(plain.size());
        defaults.node.tls.enabled = false;
    } else if (lowercase(url.substr(0, tls.size())) == tls) {
        rest = url.substr(tls.size());
        defaults.node.tls.enabled = true;
    } else {
        refuse("scheme", "must be redis-cluster or rediss-cluster");
    }
    const auto end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    const std::string_view tail = end == std::string_view::npos ? "" : rest.substr(end);
    if (!tail.empty() && tail != "/" && tail != "/0") {
        refuse(tail.front() == '?'   ? "query"
               : tail.front() == '#' ? "fragment"
                                     : "path",
               "a cluster URL names only nodes (a cluster has database 0 alone)");
    }
    read_userinfo(authority, defaults.node.username, defaults.node.password);
    defaults.seeds = read_hosts(authority, 6379, "node");
    return defaults;
}

ClusterConfig parse_cluster_url(std::string_view url) {
    return parse_cluster_url(url, ClusterConfig{});
}

ConnectionConfig parse_url(std::string_view url, ConnectionConfig defaults) {
    if (constexpr std::string_view sentinel = "redis-sentinel://";
        lowercase(url.substr(0, sentinel.size())) == sentinel) {
        return parse_sentinel_url(url.substr(sentinel.size()), std::move(defaults));
    }
    const auto parsed = urls::parse_uri(url);
    if (!parsed) {
        // Boost.URL's message names the grammar rule that failed, never the input.
        refuse("syntax", parsed.error().message());
    }
    const urls::url_view& u = *parsed;
    ConnectionConfig config = std::move(defaults);

    const std::string scheme = lowercase(u.scheme());
    const bool is_unix = scheme == "unix";
    config.sentinel.sentinels.clear();  // a direct URL: no sentinel left from the defaults
    if (scheme != "redis" && scheme != "rediss" && !is_unix) {
        refuse("scheme",
               fmt::format("must be redis, rediss, unix or redis-sentinel, got '{}'", scheme));
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
