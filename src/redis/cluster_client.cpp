// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/cluster_client.hpp>

#include "command_keys.hpp"
#include "endpoint_hash.hpp"
#include "pooled_connection.hpp"
#include "slot_map.hpp"

#include <keyedpool/async_mutex.hpp>
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/keyed_client_pool.hpp>
#include <keyedpool/logging.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using clock = std::chrono::steady_clock;

void validate(const ClusterConfig& config) {
    if (config.seeds.empty()) {
        throw std::invalid_argument("ClusterConfig.seeds must name at least one node");
    }
    for (const auto& seed : config.seeds) {
        if (seed.host.empty() || seed.port == 0) {
            throw std::invalid_argument("ClusterConfig.seeds: every seed needs a host and a port");
        }
    }
    if (config.max_redirects < 1) {
        throw std::invalid_argument("ClusterConfig.max_redirects must be >= 1");
    }
    if (!config.node.unix_socket.empty()) {
        throw std::invalid_argument(
            "ClusterConfig.node.unix_socket must be empty (the slot map names TCP nodes)");
    }
    if (!config.node.sentinel.sentinels.empty()) {
        throw std::invalid_argument(
            "ClusterConfig.node.sentinel must be empty (a cluster fails over by itself)");
    }
    if (config.node.database != 0) {
        throw std::invalid_argument(
            "ClusterConfig.node.database must be 0 (a cluster has no other)");
    }
    ConnectionConfig node = config.node;
    node.host = config.seeds.front().host;
    node.port = config.seeds.front().port;
    try {
        validate(node);
    } catch (const std::invalid_argument& e) {
        std::string message = e.what();
        constexpr std::string_view prefix = "ConnectionConfig.";
        if (message.rfind(prefix, 0) == 0) {
            message = "ClusterConfig.node." + message.substr(prefix.size());
        }
        throw std::invalid_argument(message);
    }
}

namespace detail {
namespace {

PoolOptions node_pool_options(const ClusterConfig& config) {
    PoolOptions o;
    o.connect_timeout = config.node.connect_timeout + std::chrono::seconds(1);  // the node's own
    o.backoff.initial = std::chrono::milliseconds(50);
    o.backoff.max = std::chrono::seconds(1);
    // A node that left the map (a demoted primary, a seed) is closed once nobody uses it.
    o.idle_timeout = std::chrono::minutes(1);
    return o;
}

bool is_redirect(const Reply& reply) {
    return reply.server_error() == ServerError::moved || reply.server_error() == ServerError::ask;
}

}  // namespace
}  // namespace detail

struct ClusterClient::Impl : std::enable_shared_from_this<Impl> {
    using Pool =
        KeyedClientPool<Endpoint, Connection, ClientTraits<Connection>, detail::EndpointHash>;

    Impl(executor_type ex, ClusterConfig cfg)
        : executor(std::move(ex)),
          config(std::move(cfg)),
          map(std::make_shared<const detail::SlotMap>()),
          refreshing(executor),
          nodes(executor, node_factory(executor, config.node), detail::node_pool_options(config)) {}

    static Pool::factory_type node_factory(executor_type executor, ConnectionConfig node) {
        return [executor,
                node](const Endpoint& endpoint) -> asio::awaitable<std::shared_ptr<Connection>> {
            ConnectionConfig node_config = node;
            node_config.host = endpoint.host;
            node_config.port = endpoint.port;
            co_return co_await Connection::async_connect(executor, std::move(node_config));
        };
    }

    std::shared_ptr<const detail::SlotMap> current_map() const {
        std::lock_guard lock(map_mutex);
        return map;
    }

    /// Where a command for `slot` goes: its primary; any primary (in turn) for a keyless command.
    std::optional<Endpoint> route(std::optional<std::uint16_t> slot) {
        const auto snapshot = current_map();
        if (slot) {
            if (const Endpoint* primary = snapshot->primary_of(*slot)) {
                return *primary;
            }
            return std::nullopt;
        }
        if (snapshot->primaries.empty()) {
            return std::nullopt;
        }
        const auto turn = keyless_turn.fetch_add(1, std::memory_order_relaxed);
        return snapshot->primaries[turn % snapshot->primaries.size()];
    }

    // ---- the slot map ----------------------------------------------------------------------

    /// Loads the map from the first node that answers: the known primaries, then the seeds.
    asio::awaitable<error_code> load_map() {
        std::vector<Endpoint> candidates = current_map()->primaries;
        for (const auto& seed : config.seeds) {
            if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
                candidates.push_back(seed);
            }
        }
        error_code last = ResultCode::connect_failed;
        for (const auto& node : candidates) {
            if (closed.load()) {
                co_return ResultCode::shutting_down;
            }
            const auto deadline = clock::now() + config.node.connect_timeout;
            auto [get_ec, connection] = co_await detail::pooled_connection(nodes, node, deadline);
            if (get_ec) {
                last = get_ec;
                continue;
            }
            auto [ec, reply] = co_await connection->async_exec_until(
                command("CLUSTER", "SLOTS"), deadline, asio::as_tuple(asio::use_awaitable));
            if (ec) {
                last = ec;
                continue;
            }
            auto loaded = std::make_shared<detail::SlotMap>();
            if (auto parse_ec = detail::parse_cluster_slots(reply, node, *loaded)) {
                log()->warn("keyedpool.redis: cluster node {}:{} sent a slot map that is not one",
                            node.host, node.port);
                last = parse_ec;
                continue;
            }
            if (loaded->primaries.empty()) {
                last = ResultCode::server_busy;  // the node knows no primary: ask another
                continue;
            }
            if (!loaded->complete()) {
                log()->warn("keyedpool.redis: cluster slot map from {}:{} leaves slots unserved",
                            node.host, node.port);
            }
            {
                std::lock_guard lock(map_mutex);
                map = std::move(loaded);
            }
            generation.fetch_add(1);
            co_return error_code{};
        }
        co_return last;
    }

    /// Reloads the map unless it changed since the caller saw `seen`: one load however many
    /// callers ask at once (the others wait for it, then find the generation moved).
    asio::awaitable<error_code> refresh_after(std::uint64_t seen) {
        auto [lock_ec] = co_await refreshing.async_lock(asio::as_tuple(asio::use_awaitable));
        if (lock_ec) {
            co_return lock_ec;
        }
        AsyncMutex::Guard guard(refreshing, std::adopt_lock);
        if (generation.load() != seen) {
            co_return error_code{};
        }
        co_return co_await load_map();
    }

    /// A refresh nobody waits for (a node failed under a command, or could not be reached). At
    /// most one per `failure_reload_interval`: while a failover is pending every command to the
    /// lost node fails, and each would otherwise ask for a map (which changes only once).
    void refresh_in_background(std::uint64_t seen) {
        const auto now = clock::now().time_since_epoch().count();
        auto last = last_failure_reload.load();
        if (now - last < clock::duration(failure_reload_interval).count() ||
            !last_failure_reload.compare_exchange_strong(last, now)) {
            return;
        }
        asio::co_spawn(
            asio::make_strand(executor),
            [self = shared_from_this(), seen]() -> asio::awaitable<void> {
                (void)co_await self->refresh_after(seen);
            },
            asio::detached);
    }

    // ---- commands --------------------------------------------------------------------------

    /// The connection to the primary of `slot` (refreshing the map when it has none).
    asio::awaitable<std::pair<error_code, std::shared_ptr<Connection>>> connection_for(
        std::optional<std::uint16_t> slot, clock::time_point deadline) {
        if (closed.load()) {
            co_return std::pair{error_code(ResultCode::shutting_down), nullptr};
        }
        const auto seen = generation.load();
        auto node = route(slot);
        if (!node) {
            if (auto ec = co_await refresh_after(seen)) {
                co_return std::pair{ec, nullptr};
            }
            node = route(slot);
            if (!node) {
                co_return std::pair{error_code(ResultCode::server_busy), nullptr};
            }
        }
        auto [ec, connection] = co_await detail::pooled_connection(nodes, *node, deadline);
        if (ec && ec != asio::error::operation_aborted && ec != ResultCode::timeout) {
            refresh_in_background(seen);  // unreachable: a failover may have replaced it
        }
        co_return std::pair{ec, std::move(connection)};
    }

    asio::awaitable<std::pair<error_code, Reply>> exec(std::vector<std::string> command,
                                                       clock::time_point deadline) {
        const detail::CommandSlot routing = detail::command_slot(command);
        if (routing.ec) {
            co_return std::pair{routing.ec, Reply{}};
        }
        const std::optional<std::uint16_t> slot = routing.slot;
        std::optional<Endpoint> redirected;  // MOVED or ASK named this node
        bool asking = false;
        for (int redirects = 0;;) {
            const auto seen = generation.load();
            std::pair<error_code, std::shared_ptr<Connection>> got;
            if (redirected) {
                if (closed.load()) {
                    co_return std::pair{error_code(ResultCode::shutting_down), Reply{}};
                }
                got = co_await detail::pooled_connection(nodes, *redirected, deadline);
            } else {
                got = co_await connection_for(slot, deadline);
            }
            auto& [get_ec, connection] = got;
            if (get_ec) {
                co_return std::pair{get_ec, Reply{}};
            }
            const Endpoint target = redirected ? *redirected : connection->endpoint();
            // (Not a conditional expression of two co_awaits: g++ 12 miscompiles that.)
            error_code ec;
            Reply reply;
            if (asking) {
                std::tie(ec, reply) = co_await connection->async_exec_asking(
                    command, deadline, asio::as_tuple(asio::use_awaitable));
            } else {
                std::tie(ec, reply) = co_await connection->async_exec_until(
                    command, deadline, asio::as_tuple(asio::use_awaitable));
            }
            if (!ec || !detail::is_redirect(reply)) {
                if (ec && !connection->is_connected() && ec != asio::error::operation_aborted) {
                    refresh_in_background(seen);  // the node failed under the command
                }
                co_return std::pair{ec, std::move(reply)};
            }
            auto redirect = detail::parse_redirect(reply.text(), target);
            if (!redirect) {
                log()->warn("keyedpool.redis: a cluster node sent a redirect that is not one");
                co_return std::pair{error_code(ResultCode::protocol_error), std::move(reply)};
            }
            if (++redirects > config.max_redirects) {
                redirect_limit_hits.fetch_add(1, std::memory_order_relaxed);
                co_return std::pair{error_code(ResultCode::too_many_redirects), std::move(reply)};
            }
            redirected = redirect->node;
            asking = reply.server_error() == ServerError::ask;
            if (asking) {
                asked.fetch_add(1, std::memory_order_relaxed);
            } else {
                moved.fetch_add(1, std::memory_order_relaxed);
                // The slot moved for good: the map is stale, for other slots too. The retry goes
                // where the node said (the map just loaded may lag behind it).
                (void)co_await refresh_after(seen);
            }
        }
    }

    std::shared_ptr<spdlog::logger> log() const { return logger(); }

    void close() noexcept {
        if (!closed.exchange(true)) {
            refreshing.cancel_waiters();
            nodes.async_shutdown(asio::detached);
        }
    }

    executor_type executor;
    const ClusterConfig config;
    mutable std::mutex map_mutex;
    std::shared_ptr<const detail::SlotMap> map;  // guarded by map_mutex
    std::atomic<std::uint64_t> generation{0};    // maps loaded
    AsyncMutex refreshing;
    Pool nodes;
    std::atomic<bool> closed{false};
    static constexpr auto failure_reload_interval = std::chrono::milliseconds(100);
    std::atomic<clock::rep> last_failure_reload{0};  // steady_clock ticks
    std::atomic<std::uint64_t> keyless_turn{0};
    std::atomic<std::uint64_t> moved{0};
    std::atomic<std::uint64_t> asked{0};
    std::atomic<std::uint64_t> redirect_limit_hits{0};
};

namespace {

/// Runs `operation` on a strand of its own and completes `handler` with its results.
template <typename T, typename Handler, typename Adapt>
void spawn(const asio::any_io_executor& executor, asio::awaitable<T> operation, Handler handler,
           Adapt adapt) {
    keyedpool::detail::co_spawn_for_handler(asio::make_strand(executor), std::move(operation),
                                            std::move(handler), executor, std::move(adapt));
}

}  // namespace

ClusterClient::ClusterClient(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

ClusterClient::~ClusterClient() {
    close();
}

void ClusterClient::connect_erased(
    executor_type executor, ClusterConfig config,
    asio::any_completion_handler<void(error_code, std::shared_ptr<ClusterClient>)> handler) {
    auto impl = std::make_shared<Impl>(executor, std::move(config));
    spawn(executor, impl->load_map(), std::move(handler),
          [impl](auto user_handler, std::exception_ptr e, error_code ec) {
              if (e) {
                  ec = keyedpool::detail::error_code_of(e, ResultCode::connect_failed);
              }
              if (ec) {
                  impl->close();
                  std::move(user_handler)(ec, nullptr);
                  return;
              }
              std::move(user_handler)(ec, std::make_shared<ClusterClient>(impl));
          });
}

void ClusterClient::exec_erased(std::vector<std::string> command, clock::time_point deadline,
                                asio::any_completion_handler<void(error_code, Reply)> handler) {
    auto impl = impl_;
    spawn(impl->executor, impl->exec(std::move(command), deadline), std::move(handler),
          [impl](auto user_handler, std::exception_ptr e, std::pair<error_code, Reply> result) {
              if (e) {
                  result.first = keyedpool::detail::error_code_of(e, ResultCode::io_error);
              }
              std::move(user_handler)(result.first, std::move(result.second));
          });
}

void ClusterClient::connection_for_erased(
    std::uint16_t slot, clock::time_point deadline,
    asio::any_completion_handler<void(error_code, std::shared_ptr<Connection>)> handler) {
    auto impl = impl_;
    if (slot >= cluster_slot_count) {
        throw std::invalid_argument("ClusterClient::async_connection_for: slot must be < 16384");
    }
    spawn(impl->executor, impl->connection_for(slot, deadline), std::move(handler),
          [impl](auto user_handler, std::exception_ptr e,
                 std::pair<error_code, std::shared_ptr<Connection>> result) {
              if (e) {
                  result.first = keyedpool::detail::error_code_of(e, ResultCode::io_error);
                  result.second = nullptr;
              }
              std::move(user_handler)(result.first, std::move(result.second));
          });
}

void ClusterClient::refresh_erased(std::uint64_t generation,
                                   asio::any_completion_handler<void(error_code)> handler) {
    auto impl = impl_;
    spawn(impl->executor, impl->refresh_after(generation), std::move(handler),
          [impl](auto user_handler, std::exception_ptr e, error_code ec) {
              if (e) {
                  ec = keyedpool::detail::error_code_of(e, ResultCode::io_error);
              }
              std::move(user_handler)(ec);
          });
}

std::optional<Endpoint> ClusterClient::primary_for(std::uint16_t slot) const {
    if (slot >= cluster_slot_count) {
        return std::nullopt;
    }
    return impl_->route(slot);
}

std::uint64_t ClusterClient::map_generation() const noexcept {
    return impl_->generation.load();
}

ClusterStats ClusterClient::stats() const {
    ClusterStats s;
    s.map_refreshes = impl_->generation.load();
    s.moved = impl_->moved.load(std::memory_order_relaxed);
    s.asked = impl_->asked.load(std::memory_order_relaxed);
    s.redirect_limit_hits = impl_->redirect_limit_hits.load(std::memory_order_relaxed);
    s.primaries = impl_->current_map()->primaries.size();
    s.connections = impl_->nodes.stats();
    return s;
}

void ClusterClient::close() noexcept {
    impl_->close();
}

bool ClusterClient::is_connected() const noexcept {
    return !impl_->closed.load();
}

ClusterClient::executor_type ClusterClient::get_executor() const noexcept {
    return impl_->executor;
}

}  // namespace keyedpool::redis
