// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/cluster_client.hpp>
#include <keyedpool/redis/url.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <ostream>
#include <stdexcept>
#include <string>

namespace keyedpool::redis {
namespace {

struct Accepted {
    const char* url;
    const char* host;
    std::uint16_t port;
    const char* unix_socket;
    bool tls;
    const char* username;
    const char* password;
    int database;
};

void PrintTo(const Accepted& accepted, std::ostream* out) {
    *out << accepted.url;
}

class AcceptedUrl : public ::testing::TestWithParam<Accepted> {};

TEST_P(AcceptedUrl, FillsTheConfig) {
    const Accepted& want = GetParam();
    const ConnectionConfig config = parse_url(want.url);
    EXPECT_EQ(config.host, want.host);
    EXPECT_EQ(config.port, want.port);
    EXPECT_EQ(config.unix_socket, want.unix_socket);
    EXPECT_EQ(config.tls.enabled, want.tls);
    EXPECT_EQ(config.username, want.username);
    EXPECT_EQ(config.password, want.password);
    EXPECT_EQ(config.database, want.database);
    EXPECT_NO_THROW(validate(config));
}

INSTANTIATE_TEST_SUITE_P(
    Forms, AcceptedUrl,
    ::testing::Values(
        Accepted{"redis://localhost", "localhost", 6379, "", false, "", "", 0},
        Accepted{"redis://127.0.0.1:6380", "127.0.0.1", 6380, "", false, "", "", 0},
        Accepted{"redis://127.0.0.1:6380/", "127.0.0.1", 6380, "", false, "", "", 0},
        Accepted{"redis://cache.internal/3", "cache.internal", 6379, "", false, "", "", 3},
        Accepted{"redis://[::1]:7000/1", "::1", 7000, "", false, "", "", 1},
        Accepted{"redis://:secret@h", "h", 6379, "", false, "", "secret", 0},
        Accepted{"redis://app:s3cret@h:1/15", "h", 1, "", false, "app", "s3cret", 15},
        Accepted{"redis://app:p%40ss%3Aw%2Fd@h", "h", 6379, "", false, "app", "p@ss:w/d", 0},
        Accepted{"REDIS://H", "H", 6379, "", false, "", "", 0},  // the scheme in any case
        Accepted{"rediss://redis.example.com:6380/2", "redis.example.com", 6380, "", true, "", "",
                 2},
        Accepted{"rediss://default:pw@10.0.0.5", "10.0.0.5", 6379, "", true, "default", "pw", 0},
        Accepted{"unix:///run/redis/redis.sock", "127.0.0.1", 6379, "/run/redis/redis.sock", false,
                 "", "", 0},
        Accepted{"unix:///tmp/r.sock?db=4", "127.0.0.1", 6379, "/tmp/r.sock", false, "", "", 4},
        Accepted{"unix:///var/run/keyedpool-a-longer-name/redis-server.sock", "127.0.0.1", 6379,
                 "/var/run/keyedpool-a-longer-name/redis-server.sock", false, "", "", 0},
        Accepted{"unix://:pw@/tmp/r.sock", "127.0.0.1", 6379, "/tmp/r.sock", false, "", "pw", 0}));

struct Refused {
    const char* url;
    const char* part;  // the message must name it
};

void PrintTo(const Refused& refused, std::ostream* out) {
    *out << '"' << refused.url << '"';
}

class RefusedUrl : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedUrl, ThrowsInvalidArgumentNamingThePart) {
    const Refused& want = GetParam();
    try {
        (void)parse_url(want.url);
        ADD_FAILURE() << want.url << " was accepted";
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(std::string("Redis URL: ") + want.part), std::string::npos)
            << want.url << " -> " << what;
        // Whatever the URL, its secrets never reach the message.
        EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, RefusedUrl,
    ::testing::Values(Refused{"", "syntax"}, Refused{"localhost:6379", "scheme"},
                      Refused{"http://:hunter2@h", "scheme"}, Refused{"redis:h", "scheme"},
                      Refused{"redis://", "host"}, Refused{"redis://:hunter2@", "host"},
                      Refused{"redis://h:0", "port"}, Refused{"redis://h:65536", "port"},
                      Refused{"redis://h:99999999999", "port"}, Refused{"redis://h:abc", "port"},
                      Refused{"redis://h:-1", "port"}, Refused{"redis://h/x", "database"},
                      Refused{"redis://h/1/2", "database"}, Refused{"redis://h/-1", "database"},
                      Refused{"redis://h/1?db=2", "query"}, Refused{"redis://h#frag", "fragment"},
                      Refused{"redis://user@h", "user"},  // a user name needs a password
                      Refused{"redis://user:@h", "password"},
                      Refused{"redis://:hunter2@h:1:2", "port"}, Refused{"redis://h h", "syntax"},
                      Refused{"unix://", "path"}, Refused{"unix://host/tmp/r.sock", "host"},
                      Refused{"unix:///tmp/r.sock?x=1", "query"},
                      Refused{"unix:///tmp/r.sock?db=x", "database"}));

TEST(RedisUrl, SentinelFormListsTheSentinelsAndTheMasterName) {
    const auto config =
        parse_url("redis-sentinel://app:p%40ss@10.0.0.1:26380,[::1],sentinel-c:5000/mymaster/2");
    ASSERT_EQ(config.sentinel.sentinels.size(), 3u);
    EXPECT_EQ(config.sentinel.sentinels[0], (Endpoint{"10.0.0.1", 26380}));
    EXPECT_EQ(config.sentinel.sentinels[1], (Endpoint{"::1", 26379}));
    EXPECT_EQ(config.sentinel.sentinels[2], (Endpoint{"sentinel-c", 5000}));
    EXPECT_EQ(config.sentinel.master_name, "mymaster");
    EXPECT_EQ(config.database, 2);
    EXPECT_EQ(config.username, "app");
    EXPECT_EQ(config.password, "p@ss");
    EXPECT_NO_THROW(validate(config));
    const auto one = parse_url("REDIS-SENTINEL://s1/cache");
    ASSERT_EQ(one.sentinel.sentinels.size(), 1u);
    EXPECT_EQ(one.sentinel.sentinels[0], (Endpoint{"s1", 26379}));
    EXPECT_EQ(one.database, 0);
    EXPECT_TRUE(parse_url("redis://h", one).sentinel.sentinels.empty())
        << "a direct URL must not keep sentinels from the defaults (they would win)";
    for (const char* bad :
         {"redis-sentinel://s1", "redis-sentinel://s1/", "redis-sentinel:///m",
          "redis-sentinel://s1,/m", "redis-sentinel://s1:0/m", "redis-sentinel://s1:x/m",
          "redis-sentinel://s1/m/x", "redis-sentinel://user@s1/m", "redis-sentinel://:@s1/m",
          "redis-sentinel://s1/m?x=1"}) {
        EXPECT_THROW((void)parse_url(bad), std::invalid_argument) << bad;
    }
}

TEST(RedisUrl, ClusterFormListsTheSeedNodes) {
    redis::ClusterConfig defaults;
    defaults.node.connect_timeout = std::chrono::milliseconds(300);
    defaults.max_redirects = 3;
    const auto config = redis::parse_cluster_url(
        "rediss-cluster://app:p%40ss@10.0.0.1:7000,[::1],node-c:7002/", defaults);
    ASSERT_EQ(config.seeds.size(), 3u);
    EXPECT_EQ(config.seeds[0], (Endpoint{"10.0.0.1", 7000}));
    EXPECT_EQ(config.seeds[1], (Endpoint{"::1", 6379}));
    EXPECT_EQ(config.seeds[2], (Endpoint{"node-c", 7002}));
    EXPECT_TRUE(config.node.tls.enabled);
    EXPECT_EQ(config.node.username, "app");
    EXPECT_EQ(config.node.password, "p@ss");
    EXPECT_EQ(config.node.connect_timeout, std::chrono::milliseconds(300)) << "defaults kept";
    EXPECT_EQ(config.max_redirects, 3);
    EXPECT_NO_THROW(redis::validate(config));
    EXPECT_FALSE(redis::parse_cluster_url("REDIS-CLUSTER://n1/0", config).node.tls.enabled);
    for (const char* bad :
         {"redis-cluster://", "redis-cluster://n1,", "redis-cluster://n1:0", "redis-cluster://n1:x",
          "redis-cluster://n1/2", "redis-cluster://n1?x=1", "redis-cluster://n1#f",
          "redis-cluster://user@n1", "redis-cluster://:@n1", "redis://n1", "redis-cluster:/n1"}) {
        EXPECT_THROW((void)redis::parse_cluster_url(bad), std::invalid_argument) << bad;
    }
    try {
        (void)redis::parse_cluster_url("redis-cluster://:hunter2@n1,n2:bad");
        ADD_FAILURE() << "a bad port was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("port"), std::string::npos) << e.what();
    }
}

TEST(RedisUrl, ClusterConfigValidationNamesTheField) {
    auto refused = [](const redis::ClusterConfig& config) -> std::string {
        try {
            redis::validate(config);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "accepted";
    };
    redis::ClusterConfig config;
    EXPECT_NE(refused(config).find("ClusterConfig.seeds"), std::string::npos) << refused(config);
    config.seeds = {Endpoint{"127.0.0.1", 7000}};
    EXPECT_NO_THROW(redis::validate(config));
    auto with = [&](auto change) {
        redis::ClusterConfig c = config;
        change(c);
        return refused(c);
    };
    EXPECT_NE(with([](auto& c) {
                  c.seeds.push_back(Endpoint{"", 7001});
              }).find("ClusterConfig.seeds"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) {
                  c.seeds.push_back(Endpoint{"h", 0});
              }).find("ClusterConfig.seeds"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) { c.max_redirects = 0; }).find("ClusterConfig.max_redirects"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) { c.node.database = 1; }).find("ClusterConfig.node.database"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) {
                  c.node.unix_socket = "/tmp/r.sock";
              }).find("ClusterConfig.node.unix_socket"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) {
                  c.node.sentinel.sentinels = {Endpoint{"s", 1}};
              }).find("ClusterConfig.node.sentinel"),
              std::string::npos);
    EXPECT_NE(with([](auto& c) { c.node.connect_timeout = {}; }).find("connect_timeout"),
              std::string::npos);
}

TEST(RedisUrl, KeepsTheDefaultsTheUrlDoesNotMention) {
    ConnectionConfig defaults;
    defaults.connect_timeout = std::chrono::milliseconds(250);
    defaults.tls.ca_file = "/etc/ssl/ours.pem";
    defaults.password = "from-the-environment";
    const auto config = parse_url("rediss://cache:6380", defaults);
    EXPECT_EQ(config.connect_timeout, std::chrono::milliseconds(250));
    EXPECT_EQ(config.tls.ca_file, "/etc/ssl/ours.pem");
    EXPECT_TRUE(config.tls.enabled);
    EXPECT_EQ(config.password, "from-the-environment") << "a URL without userinfo keeps it";
    EXPECT_EQ(parse_url("redis://:other@cache", defaults).password, "other");
    EXPECT_FALSE(parse_url("redis://cache", defaults).tls.enabled)
        << "redis:// means no TLS even when the defaults had it on";
    ConnectionConfig unix_defaults;
    unix_defaults.unix_socket = "/tmp/old.sock";
    EXPECT_EQ(parse_url("redis://cache", unix_defaults).unix_socket, "")
        << "a TCP URL must not leave a unix socket path behind (it would win)";
}

TEST(RedisUrl, ValidateNamesTheTransportFields) {
    ConnectionConfig config;
    config.unix_socket = std::string(108, 'x');
    EXPECT_THROW(validate(config), std::invalid_argument);
    config.unix_socket = "/tmp/r.sock";
    config.tls.enabled = true;
    try {
        validate(config);
        ADD_FAILURE() << "TLS over a unix socket was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("ConnectionConfig.tls"), std::string::npos);
    }
    config = ConnectionConfig{};
    config.tls.enabled = true;
    config.tls.cert_file = "/tmp/client.crt";
    try {
        validate(config);
        ADD_FAILURE() << "a client certificate without its key was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("tls.key_file"), std::string::npos);
    }
    config = ConnectionConfig{};
    config.sentinel.sentinels.push_back({"127.0.0.1", 26379});
    try {
        validate(config);
        ADD_FAILURE() << "sentinels without a master name were accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("sentinel.master_name"), std::string::npos);
    }
    config.sentinel.master_name = "mymaster";
    config.sentinel.sentinels.push_back({"", 26379});
    EXPECT_THROW(validate(config), std::invalid_argument);
    config = ConnectionConfig{};
    config.host.clear();
    config.unix_socket = "/tmp/r.sock";
    EXPECT_NO_THROW(validate(config)) << "host is not needed with a unix socket";
}

}  // namespace
}  // namespace keyedpool::redis
