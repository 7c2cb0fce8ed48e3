// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "sentinel.hpp"
#include "transport.hpp"

#include <keyedpool/logging.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <sstream>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

std::optional<std::uint64_t> to_number(const std::string& text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<Endpoint> to_endpoint(const std::string& host, const std::string& port) {
    const auto number = to_number(port);
    if (host.empty() || !number || *number == 0 || *number > 65535) {
        return std::nullopt;
    }
    return Endpoint{host, static_cast<std::uint16_t>(*number)};
}

}  // namespace

asio::awaitable<std::optional<SentinelAnswer>> ask_sentinel(asio::any_io_executor executor,
                                                            const ConnectionConfig& config,
                                                            std::size_t index,
                                                            clock::time_point deadline) {
    const Endpoint& at = config.sentinel.sentinels[index];
    ConnectionConfig sentinel_config;
    sentinel_config.host = at.host;
    sentinel_config.port = at.port;
    sentinel_config.username = config.sentinel.username;
    sentinel_config.password = config.sentinel.password;
    sentinel_config.tls = config.tls;
    sentinel_config.max_reply_bytes = config.max_reply_bytes;
    sentinel_config.health_check_interval = config.health_check_interval;
    sentinel_config.connect_timeout =
        std::max<clock::duration>(deadline - clock::now(), std::chrono::milliseconds(1));
    auto [ec, sentinel] = co_await Connection::async_connect(executor, std::move(sentinel_config),
                                                             asio::as_tuple(asio::use_awaitable));
    if (ec) {
        logger()->warn("keyedpool.redis: sentinel {} cannot be reached: {}", describe_endpoint(at),
                       ec.message());
        co_return std::nullopt;
    }
    auto [ask_ec, address] = co_await sentinel->async_exec_until(
        command("SENTINEL", "get-master-addr-by-name", config.sentinel.master_name), deadline,
        asio::as_tuple(asio::use_awaitable));
    std::optional<Endpoint> primary;
    if (!ask_ec && address.type() == ReplyType::array && address.elements().size() == 2) {
        primary = to_endpoint(address.elements()[0].text(), address.elements()[1].text());
    }
    if (!primary) {
        logger()->warn("keyedpool.redis: sentinel {} does not name a primary for '{}': {}",
                       describe_endpoint(at), config.sentinel.master_name,
                       ask_ec ? ask_ec.message() : std::string("no such master"));
        co_return std::nullopt;
    }
    co_return SentinelAnswer{std::move(sentinel), std::move(*primary)};
}

asio::awaitable<std::optional<std::uint64_t>> confirm_primary(Connection& sentinel,
                                                              const std::string& master_name,
                                                              const Endpoint& primary,
                                                              clock::time_point deadline) {
    auto [ec, fields] = co_await sentinel.async_exec_until(
        command("SENTINEL", "master", master_name), deadline, asio::as_tuple(asio::use_awaitable));
    if (ec || fields.type() != ReplyType::array) {
        logger()->warn("keyedpool.redis: SENTINEL MASTER {} failed: {}", master_name,
                       ec ? ec.message() : std::string("not an array"));
        co_return std::nullopt;
    }
    std::string ip;
    std::string port;
    std::optional<std::uint64_t> epoch;
    const auto& items = fields.elements();
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        const std::string& name = items[i].text();
        if (name == "ip") {
            ip = items[i + 1].text();
        } else if (name == "port") {
            port = items[i + 1].text();
        } else if (name == "config-epoch") {
            epoch = to_number(items[i + 1].text());
        }
    }
    const auto named = to_endpoint(ip, port);
    if (!named || !epoch || *named != primary) {
        logger()->warn("keyedpool.redis: the sentinel moved primary '{}' to {} while connecting",
                       master_name, named ? describe_endpoint(*named) : std::string("?"));
        co_return std::nullopt;
    }
    co_return epoch;
}

void watch_switches(const std::shared_ptr<Connection>& sentinel, std::string master_name,
                    Endpoint primary, std::function<void(const Endpoint&)> on_switch) {
    sentinel->set_push_handler([master_name = std::move(master_name), primary = std::move(primary),
                                on_switch = std::move(on_switch)](Reply message) {
        // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
        if (message.elements().size() < 3 || message.elements()[1].text() != "+switch-master") {
            return;
        }
        std::istringstream words(message.elements()[2].text());
        std::string name, old_ip, old_port, new_ip, new_port;
        words >> name >> old_ip >> old_port >> new_ip >> new_port;
        const auto moved_to = to_endpoint(new_ip, new_port);
        if (name == master_name && moved_to && *moved_to != primary) {
            on_switch(*moved_to);
        }
    });
    sentinel->async_exec(
        command("SUBSCRIBE", "+switch-master"), [](boost::system::error_code ec, Reply) {
            if (ec) {
                logger()->debug("keyedpool.redis: cannot watch +switch-master: {}", ec.message());
            }
        });
}

}  // namespace keyedpool::redis::detail
