// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "redis_cluster.hpp"

#include "child_process.hpp"
#include "sentinel_group.hpp"  // blocking_command

#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::test {

namespace {

/// `field:value` of an INFO-style text, or "".
std::string field_of(const std::string& text, const std::string& field) {
    const auto at = text.find(field + ":");
    if (at == std::string::npos) {
        return {};
    }
    const auto start = at + field.size() + 1;
    return text.substr(start, text.find_first_of("\r\n", start) - start);
}

}  // namespace

RedisCluster::RedisCluster(int primaries, int replicas) : replicas_(replicas) {
    const auto started = std::chrono::steady_clock::now();
    const int count = primaries * (1 + replicas);
    for (int i = 0; i < count; ++i) {
        // The bus port is chosen too (Redis 7 `cluster-port`): port + 10000 may not be free. The
        // node's cluster state goes to its own directory.
        const auto bus_port = free_loopback_port();
        nodes_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port",
            std::to_string(bus_port), "--cluster-node-timeout", "1000",
            "--cluster-require-full-coverage", "yes",
            // Replicas sync at once, without files (Redis 7 waits 5 s for more replicas first),
            // and their offsets move within a second (CLUSTER SLOTS lists a replica only once its
            // offset is not 0; an idle primary would move it with its first ping, after 10 s).
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--repl-ping-replica-period", "1"}));
    }
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (const auto& node : nodes_) {
        create.push_back("127.0.0.1:" + std::to_string(node->port()));
    }
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    const std::string output = nodes_.front()->dir() + "/create.log";
    const int out_fd = ::open(output.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    const pid_t creator = spawn_bound_child(create, out_fd);
    ::close(out_fd);
    int status = 0;
    ::waitpid(creator, &status, 0);
    std::string said;
    {
        std::ifstream in(output);
        said.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::remove(output.c_str());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error("redis-cli --cluster create failed, status " +
                                 std::to_string(status) + ": " + said);
    }
    if (!wait_until_ok(std::chrono::seconds(20))) {
        throw std::runtime_error("the cluster did not reach cluster_state:ok within 20 s");
    }
    startup_ = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
}

RedisCluster::~RedisCluster() = default;

redis::ClusterConfig RedisCluster::config() const {
    redis::ClusterConfig config;
    for (const auto& node : nodes_) {
        config.seeds.push_back({"127.0.0.1", node->port()});
    }
    config.node.connect_timeout = std::chrono::seconds(2);
    return config;
}

bool RedisCluster::wait_until_ok(std::chrono::steady_clock::duration limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const auto known = std::to_string(nodes_.size());
    for (;;) {
        bool ok = true;
        for (const auto& node : nodes_) {
            if (!node->running()) {
                continue;
            }
            try {
                const auto info = blocking_command(node->port(), {"CLUSTER", "INFO"}).text();
                ok = ok && field_of(info, "cluster_state") == "ok" &&
                     field_of(info, "cluster_slots_ok") == "16384";
                // Every range lists its replicas (synced ones only: CLUSTER SLOTS leaves out a
                // replica until its first sync is done).
                if (ok && replicas_ > 0) {
                    const auto slots = blocking_command(node->port(), {"CLUSTER", "SLOTS"});
                    for (const auto& range : slots.elements()) {
                        ok = ok && range.elements().size() >= 3 + std::size_t(replicas_);
                    }
                }
            } catch (const std::exception&) {
                ok = false;
            }
            if (!ok) {
                break;
            }
        }
        if (ok) {
            return true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace keyedpool::test
