// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "sentinel_group.hpp"
#include "child_process.hpp"

#include <keyedpool/redis/connection.hpp>

#include <boost/asio.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <signal.h>
#include <sys/wait.h>

namespace keyedpool::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

redis::Reply blocking_command(std::uint16_t port, std::vector<std::string> command) {
    return blocking_command(port, std::move(command), std::string());
}

redis::Reply blocking_command(std::uint16_t port, std::vector<std::string> command,
                              const std::string& password) {
    asio::io_context io;
    redis::ConnectionConfig config;
    config.port = port;
    config.password = password;
    config.connect_timeout = 2s;
    redis::Reply result;
    std::exception_ptr failure;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto connection = co_await redis::Connection::async_connect(io.get_executor(), config);
            auto [ec, reply] = co_await connection->async_exec_until(
                std::move(command), std::chrono::steady_clock::now() + 5s,
                asio::as_tuple(asio::use_awaitable));
            if (ec) {
                throw boost::system::system_error(ec, reply.text());
            }
            result = std::move(reply);
        },
        [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) {
        std::rethrow_exception(failure);
    }
    return result;
}

namespace {

void sleep_briefly() {
    std::this_thread::sleep_for(20ms);  // fixture polling only, never a test's timing
}

}  // namespace

SentinelServer::SentinelServer(const std::string& dir, const std::string& master_name,
                               std::uint16_t primary_port, std::chrono::milliseconds down_after)
    : port_(free_loopback_port()) {
    const std::string conf = dir + "/sentinel-" + std::to_string(port_) + ".conf";
    std::ofstream(conf) << "port " << port_ << "\n"
                        << "bind 127.0.0.1\n"
                        << "daemonize no\n"
                        << "loglevel warning\n"
                        << "dir " << dir << "\n"
                        << "sentinel monitor " << master_name << " 127.0.0.1 " << primary_port
                        << " 2\n"
                        << "sentinel down-after-milliseconds " << master_name << " "
                        << down_after.count() << "\n"
                        << "sentinel failover-timeout " << master_name << " 2000\n"
                        << "sentinel parallel-syncs " << master_name << " 1\n";
    pid_ = spawn_bound_child({"redis-server", conf, "--sentinel"});
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!answers_ping(port_)) {
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("a sentinel did not start within 10 s");
        }
        sleep_briefly();
    }
}

SentinelServer::~SentinelServer() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

SentinelGroup::SentinelGroup(std::string master_name, std::chrono::milliseconds down_after)
    : master_name_(std::move(master_name)) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "keyedpool-sentinel-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("SentinelGroup: mkdtemp failed");
    }
    dir_ = pattern;
    // Replication without files (and so without clashing over /tmp/dump.rdb), at once.
    const std::vector<std::string> replication{"--repl-diskless-sync",       "yes",
                                               "--repl-diskless-sync-delay", "0",
                                               "--repl-diskless-load",       "swapdb"};
    primary_ = std::make_unique<RedisServer>(replication);
    auto replica_args = replication;
    replica_args.insert(replica_args.end(),
                        {"--replicaof", "127.0.0.1", std::to_string(primary_->port())});
    replica_ = std::make_unique<RedisServer>(replica_args);
    for (int i = 0; i < 3; ++i) {
        sentinels_.push_back(
            std::make_unique<SentinelServer>(dir_, master_name_, primary_->port(), down_after));
    }
    // Ready when the replica is in sync and each sentinel sees the replica and both others.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    auto ready = [&] {
        const auto info = blocking_command(primary_->port(), {"INFO", "replication"}).text();
        if (info.find("state=online") == std::string::npos) {  // WAIT counts online replicas
            return false;
        }
        for (const auto& sentinel : sentinels_) {
            const auto replicas =
                blocking_command(sentinel->port(), {"SENTINEL", "REPLICAS", master_name_});
            const auto others =
                blocking_command(sentinel->port(), {"SENTINEL", "SENTINELS", master_name_});
            if (replicas.elements().size() != 1 || others.elements().size() != 2) {
                return false;
            }
        }
        return true;
    };
    while (!ready()) {
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error(
                "SentinelGroup: the sentinels did not find each other in 30 s");
        }
        sleep_briefly();
    }
}

SentinelGroup::~SentinelGroup() {
    sentinels_.clear();
    replica_.reset();
    primary_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

std::vector<redis::Endpoint> SentinelGroup::sentinels() const {
    std::vector<redis::Endpoint> endpoints;
    for (const auto& sentinel : sentinels_) {
        endpoints.push_back({"127.0.0.1", sentinel->port()});
    }
    return endpoints;
}

redis::ConnectionConfig SentinelGroup::config() const {
    redis::ConnectionConfig config;
    config.sentinel.sentinels = sentinels();
    config.sentinel.master_name = master_name_;
    config.connect_timeout = 2s;
    return config;
}

std::uint16_t SentinelGroup::wait_for_agreed_primary(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        std::uint16_t agreed = 0;
        bool agree = true;
        for (const auto& sentinel : sentinels_) {
            try {
                const auto address = blocking_command(
                    sentinel->port(), {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name_});
                const auto port =
                    static_cast<std::uint16_t>(std::stoi(address.elements().at(1).text()));
                agree = agree && (agreed == 0 || agreed == port);
                agreed = port;
            } catch (const std::exception&) {
                agree = false;
            }
        }
        if (agree && agreed != 0) {
            try {
                const auto role = blocking_command(agreed, {"ROLE"});
                if (role.elements().at(0).text() == "master") {
                    return agreed;
                }
            } catch (const std::exception&) {
            }
        }
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("SentinelGroup: the sentinels did not agree on a primary");
        }
        sleep_briefly();
    }
}

std::uint16_t SentinelGroup::failover() {
    const std::uint16_t before = wait_for_agreed_primary();
    blocking_command(sentinels_.front()->port(), {"SENTINEL", "FAILOVER", master_name_});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
        const std::uint16_t now = wait_for_agreed_primary();
        if (now != before) {
            return now;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("SentinelGroup: the failover did not happen in 30 s");
        }
        sleep_briefly();
    }
}

}  // namespace keyedpool::test
