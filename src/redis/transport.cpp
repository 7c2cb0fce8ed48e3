// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include "transport.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

namespace keyedpool::redis::detail {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using boost::system::system_error;

std::string describe_endpoint(const Endpoint& endpoint, bool tls) {
    const bool ipv6 = endpoint.host.find(':') != std::string::npos;
    return fmt::format("{}{}{}{}:{}", tls ? "tls " : "", ipv6 ? "[" : "", endpoint.host,
                       ipv6 ? "]" : "", endpoint.port);
}

std::string describe_endpoint(const ConnectionConfig& config) {
    if (!config.unix_socket.empty()) {
        return "unix:" + config.unix_socket;
    }
    return describe_endpoint(Endpoint{config.host, config.port}, config.tls.enabled);
}

namespace {

/// The TLS context a connection's handshake uses, from its configuration. Throws `system_error`
/// with `ResultCode::tls_failed`, naming the file that could not be loaded.
std::shared_ptr<ssl::context> make_tls_context(const TlsConfig& tls) {
    auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    auto load = [](const char* what, const std::string& file, auto&& step) {
        error_code ec;
        step(ec);
        if (ec) {
            throw system_error(ResultCode::tls_failed,
                               fmt::format("TLS: cannot load {}{}: {}", what,
                                           file.empty() ? "" : " '" + file + "'", ec.message()));
        }
    };
    if (tls.verify_peer) {
        context->set_verify_mode(ssl::verify_peer);
        if (tls.ca_file.empty() && tls.ca_path.empty()) {
            load("the system's CA certificates", "",
                 [&](error_code& ec) { context->set_default_verify_paths(ec); });
        }
        if (!tls.ca_file.empty()) {
            load("tls.ca_file", tls.ca_file,
                 [&](error_code& ec) { context->load_verify_file(tls.ca_file, ec); });
        }
        if (!tls.ca_path.empty()) {
            load("tls.ca_path", tls.ca_path,
                 [&](error_code& ec) { context->add_verify_path(tls.ca_path, ec); });
        }
    } else {
        context->set_verify_mode(ssl::verify_none);
    }
    if (!tls.cert_file.empty()) {
        load("tls.cert_file", tls.cert_file,
             [&](error_code& ec) { context->use_certificate_chain_file(tls.cert_file, ec); });
        load("tls.key_file", tls.key_file, [&](error_code& ec) {
            context->use_private_key_file(tls.key_file, ssl::context::pem, ec);
        });
    }
    return context;
}

/// The text of a failed handshake: OpenSSL's reason, and the verification result when the
/// server's certificate was refused ("certificate has expired", "hostname mismatch").
std::string handshake_failure(const error_code& ec, SSL* ssl) {
    std::string text = ec.message();
    if (const long verify = SSL_get_verify_result(ssl); verify != X509_V_OK) {
        text += fmt::format(" ({})", X509_verify_cert_error_string(verify));
    }
    return text;
}

asio::awaitable<void> connect_tcp(tcp::socket& socket, const ConnectionConfig& config) {
    error_code ec;
    const auto address = asio::ip::make_address(config.host, ec);
    if (!ec) {
        co_await socket.async_connect(tcp::endpoint(address, config.port), asio::use_awaitable);
    } else {
        tcp::resolver resolver(socket.get_executor());
        auto endpoints = co_await resolver.async_resolve(config.host, std::to_string(config.port),
                                                         asio::use_awaitable);
        co_await asio::async_connect(socket, endpoints, asio::use_awaitable);
    }
    socket.set_option(tcp::no_delay(true));
}

}  // namespace

asio::awaitable<void> Transport::async_connect(const ConnectionConfig& config) {
    if (!config.unix_socket.empty()) {
        auto& socket = stream_.emplace<Unix>(executor_);
        co_await socket.async_connect(asio::local::stream_protocol::endpoint(config.unix_socket),
                                      asio::use_awaitable);
        socket.non_blocking(true);
        co_return;
    }
    if (!config.tls.enabled) {
        auto& socket = std::get<Tcp>(stream_);
        co_await connect_tcp(socket, config);
        socket.non_blocking(true);
        co_return;
    }
    tls_context_ = make_tls_context(config.tls);
    auto& stream = stream_.emplace<Tls>(executor_, *tls_context_);
    co_await connect_tcp(stream.next_layer(), config);
    const std::string& name = config.tls.server_name.empty() ? config.host : config.tls.server_name;
    error_code not_address;
    (void)asio::ip::make_address(name, not_address);
    // SNI only for names (RFC 6066 forbids addresses); verification for both.
    if (not_address && !SSL_set_tlsext_host_name(stream.native_handle(), name.c_str())) {
        throw system_error(ResultCode::tls_failed, "TLS: cannot set the server name (SNI)");
    }
    if (config.tls.verify_peer) {
        stream.set_verify_callback(ssl::host_name_verification(name));
    }
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                asio::as_tuple(asio::use_awaitable));
    if (ec) {
        const bool closed =
            ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor;
        if (closed) {
            throw system_error(ec);  // the connect timeout closed the socket
        }
        throw system_error(
            ResultCode::tls_failed,
            "TLS handshake failed: " + handshake_failure(ec, stream.native_handle()));
    }
    stream.next_layer().non_blocking(true);
}

std::size_t Transport::write_now(asio::const_buffer buffer, error_code& ec) {
    ec = {};
    std::size_t written = 0;
    if (auto* tcp_socket = std::get_if<Tcp>(&stream_)) {
        written = tcp_socket->write_some(buffer, ec);
    } else if (auto* unix_socket = std::get_if<Unix>(&stream_)) {
        written = unix_socket->write_some(buffer, ec);
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
        written = 0;
    }
    return written;
}

void Transport::enable_keepalive(std::chrono::steady_clock::duration idle_time) {
    const auto idle_seconds = std::chrono::ceil<std::chrono::seconds>(idle_time).count();
    tcp::socket* socket = nullptr;
    if (auto* plain = std::get_if<Tcp>(&stream_)) {
        socket = plain;
    } else if (auto* tls = std::get_if<Tls>(&stream_)) {
        socket = &tls->next_layer();
    }
    if (socket == nullptr || idle_seconds <= 0) {
        return;
    }
    error_code ignored;
    socket->set_option(asio::socket_base::keep_alive(true), ignored);
    const int idle = static_cast<int>(std::min<long long>(idle_seconds, 32767));
    const int every = std::max(1, idle / 3);
    const int count = 3;
    const int fd = socket->native_handle();
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof every);
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

void Transport::close() noexcept {
    error_code ignored;
    std::visit(
        [&](auto& stream) {
            auto& socket = stream.lowest_layer();
            socket.shutdown(asio::socket_base::shutdown_both, ignored);
            socket.close(ignored);
        },
        stream_);
}

}  // namespace keyedpool::redis::detail
