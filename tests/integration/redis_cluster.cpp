// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "redis_cluster.hpp"

#include "child_process.hpp"
#include "sentinel_group.hpp"  // blocking_command
#include "tls_files.hpp"

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

RedisCluster::RedisCluster(int primaries, int replicas, ClusterSecurity security)
    : replicas_(replicas), security_(std::move(security)) {
    const auto started = std::chrono::steady_clock::now();
    const int count = primaries * (1 + replicas);
    for (int i = 0; i < count; ++i) {
        // The bus port is chosen too (Redis 7 `cluster-port`): port + 10000 may not be free. The
        // node's cluster state goes to its own directory.
        const auto bus_port = free_loopback_port();
        std::vector<std::string> secured;
        if (!security_.password.empty()) {
            secured.insert(secured.end(), {"--requirepass", security_.password, "--masterauth",
                                           security_.password});
        }
        if (security_.tls != nullptr) {
            tls_ports_.push_back(free_loopback_port());
            for (auto& arg : security_.tls->server_args(tls_ports_.back())) {
                secured.push_back(std::move(arg));
            }
            // The bus and replication connect with TLS both ways: a node is a client of the others
            // there, with a certificate made for clients.
            secured.insert(secured.end(), {"--tls-cluster", "yes", "--tls-replication", "yes",
                                           "--tls-client-cert-file", security_.tls->client_cert(),
                                           "--tls-client-key-file", security_.tls->client_key()});
        }
        std::vector<std::string> args{
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port",
            std::to_string(bus_port), "--cluster-node-timeout", "1000",
            "--cluster-require-full-coverage", "yes",
            // Replicas sync at once, without files (Redis 7 waits 5 s for more replicas first),
            // and their offsets move within a second (CLUSTER SLOTS lists a replica only once its
            // offset is not 0; an idle primary would move it with its first ping, after 10 s).
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--repl-ping-replica-period", "1"};
        args.insert(args.end(), secured.begin(), secured.end());
        nodes_.push_back(std::make_unique<RedisServer>(std::move(args)));
    }
    std::vector<std::string> create{"redis-cli", "--cluster", "create"};
    for (const auto& node : nodes_) {
        create.push_back("127.0.0.1:" + std::to_string(node->port()));
    }
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    if (!security_.password.empty()) {  // the plain ports; the bus speaks TLS by itself
        create.insert(create.end(), {"-a", security_.password, "--no-auth-warning"});
    }
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

bool RedisCluster::is_primary(std::uint16_t port) const {
    return blocking_command(port, {"ROLE"}, security_.password).elements().front().text() ==
           "master";
}

void RedisCluster::move_slot(std::uint16_t slot, std::uint16_t from, std::uint16_t to) const {
    const std::string& pw = security_.password;
    const std::string s = std::to_string(slot);
    const auto from_id = blocking_command(from, {"CLUSTER", "MYID"}, pw).text();
    const auto to_id = blocking_command(to, {"CLUSTER", "MYID"}, pw).text();
    blocking_command(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id}, pw);
    blocking_command(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}, pw);
    const auto keys = blocking_command(from, {"CLUSTER", "GETKEYSINSLOT", s, "1000"}, pw);
    // MIGRATE speaks TLS to the target when the cluster does (tls-cluster): its TLS port then.
    std::uint16_t to_migrate = to;
    for (std::size_t i = 0; i < tls_ports_.size(); ++i) {
        if (nodes_[i]->port() == to) {
            to_migrate = tls_ports_[i];
        }
    }
    for (const auto& key : keys.elements()) {
        std::vector<std::string> migrate{"MIGRATE",  "127.0.0.1", std::to_string(to_migrate),
                                         key.text(), "0",         "5000"};
        if (!pw.empty()) {
            migrate.insert(migrate.end(), {"AUTH", pw});
        }
        blocking_command(from, std::move(migrate), pw);
    }
    blocking_command(to, {"CLUSTER", "SETSLOT", s, "NODE", to_id}, pw);
    blocking_command(from, {"CLUSTER", "SETSLOT", s, "NODE", to_id}, pw);
    for (const auto& node : nodes_) {
        if (node->running() && node->port() != from && node->port() != to &&
            is_primary(node->port())) {
            blocking_command(node->port(), {"CLUSTER", "SETSLOT", s, "NODE", to_id}, pw);
        }
    }
}

redis::ClusterConfig RedisCluster::config() const {
    redis::ClusterConfig config;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        config.seeds.push_back(
            {"127.0.0.1", security_.tls != nullptr ? tls_ports_[i] : nodes_[i]->port()});
    }
    config.node.connect_timeout = std::chrono::seconds(2);
    config.node.password = security_.password;
    if (security_.tls != nullptr) {
        config.node.tls.enabled = true;
        config.node.tls.ca_file = security_.tls->ca();
    }
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
                const auto info =
                    blocking_command(node->port(), {"CLUSTER", "INFO"}, security_.password).text();
                ok = ok && field_of(info, "cluster_state") == "ok" &&
                     field_of(info, "cluster_slots_ok") == "16384";
                // Every range lists its replicas (synced ones only: CLUSTER SLOTS leaves out a
                // replica until its first sync is done).
                if (ok && replicas_ > 0) {
                    const auto slots =
                        blocking_command(node->port(), {"CLUSTER", "SLOTS"}, security_.password);
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
