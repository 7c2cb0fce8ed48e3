// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/logging.hpp>
#include <keyedpool/redis/connection.hpp>

#include "command_queue.hpp"
#include "reply_parser.hpp"
#include "sentinel.hpp"
#include "transport.hpp"

#include <fmt/format.h>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace keyedpool::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::ExecHandler;

void validate(const ConnectionConfig& config) {
    if (!config.sentinel.sentinels.empty()) {
        // host, port and unix_socket are the sentinels' to give
        if (config.sentinel.master_name.empty()) {
            throw std::invalid_argument(
                "ConnectionConfig.sentinel.master_name must not be empty when sentinels are given");
        }
        for (std::size_t i = 0; i < config.sentinel.sentinels.size(); ++i) {
            const auto& sentinel = config.sentinel.sentinels[i];
            if (sentinel.host.empty() || sentinel.port == 0) {
                throw std::invalid_argument(fmt::format(
                    "ConnectionConfig.sentinel.sentinels[{}] needs a host and a port", i));
            }
        }
    } else if (config.unix_socket.empty()) {
        if (config.host.empty()) {
            throw std::invalid_argument("ConnectionConfig.host must not be empty");
        }
        if (config.port == 0) {
            throw std::invalid_argument("ConnectionConfig.port must not be 0");
        }
    } else {
        // sockaddr_un::sun_path holds 108 bytes, the terminating NUL included.
        if (config.unix_socket.size() > 107) {
            throw std::invalid_argument(
                fmt::format("ConnectionConfig.unix_socket is {} bytes long; a unix socket path "
                            "holds at most 107",
                            config.unix_socket.size()));
        }
        if (config.unix_socket.find('\0') != std::string::npos) {
            throw std::invalid_argument("ConnectionConfig.unix_socket must not contain a NUL byte");
        }
        if (config.tls.enabled) {
            throw std::invalid_argument(
                "ConnectionConfig.tls cannot be used with unix_socket (Redis serves TLS over TCP "
                "only)");
        }
    }
    if (config.tls.cert_file.empty() != config.tls.key_file.empty()) {
        throw std::invalid_argument(
            "ConnectionConfig.tls.cert_file and tls.key_file go together (a client certificate "
            "needs its key)");
    }
    if (config.database < 0) {
        throw std::invalid_argument(
            fmt::format("ConnectionConfig.database must be >= 0, got {}", config.database));
    }
    if (config.connect_timeout <= std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument("ConnectionConfig.connect_timeout must be > 0");
    }
    if (config.max_reply_bytes == 0) {
        throw std::invalid_argument("ConnectionConfig.max_reply_bytes must be > 0");
    }
    if (config.command_timeout < std::chrono::steady_clock::duration::zero()) {
        throw std::invalid_argument("ConnectionConfig.command_timeout must be >= 0");
    }
    if (config.health_check_interval < std::chrono::steady_clock::duration::zero() ||
        (config.health_check_interval > std::chrono::steady_clock::duration::zero() &&
         config.health_check_interval < std::chrono::milliseconds(1))) {
        throw std::invalid_argument(
            "ConnectionConfig.health_check_interval must be 0 (off) or >= 1 ms");
    }
}

/// The connections of one execution context, so that its shutdown can destroy the handlers they
/// hold, as Asio's own I/O objects have theirs destroyed: a pending command's handler may own the
/// connection's owner (a coroutine holding a service that holds the connection), a cycle that only
/// its completion breaks, and a context destroyed without running again never completes it.
class ConnectionRegistry final : public asio::execution_context::service {
  public:
    static asio::execution_context::id id;

    explicit ConnectionRegistry(asio::execution_context& context) : service(context) {}

    void add(Connection::Impl* impl) {
        std::lock_guard lock(mutex_);
        live_.insert(impl);
    }
    void remove(Connection::Impl* impl) {
        std::lock_guard lock(mutex_);
        live_.erase(impl);
    }

  private:
    void shutdown() override;

    std::mutex mutex_;
    std::unordered_set<Connection::Impl*> live_;
};

asio::execution_context::id ConnectionRegistry::id;

/// The connection's state, shared by the public handle and the I/O in flight. Everything below is
/// touched only on `strand` except the atomics.
struct Connection::Impl : std::enable_shared_from_this<Impl> {
    using clock = std::chrono::steady_clock;

    Impl(const executor_type& executor, ConnectionConfig cfg)
        : strand(asio::make_strand(executor)),
          transport(strand),
          watch_timer(strand),
          config(std::move(cfg)),
          parser(config.max_reply_bytes),
          registry(asio::use_service<ConnectionRegistry>(
              asio::query(executor, asio::execution::context))) {
        registry.add(this);
    }

    ~Impl() { registry.remove(this); }

    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    /// Queues a formatted command; on the strand.
    void exec(std::uint64_t id, std::string payload, clock::time_point caller_deadline,
              ExecHandler handler, std::uint8_t leading_replies = 0) {
        if (closed) {
            complete(std::move(handler), ResultCode::io_error, Reply{});
            return;
        }
        const bool watched = config.command_timeout > clock::duration::zero() ||
                             config.health_check_interval > clock::duration::zero() ||
                             caller_deadline != clock::time_point::max();
        const auto now = watched ? clock::now() : clock::time_point{};
        if (commands.empty()) {
            silent_since = now;  // the server owes us something from now on
        }
        const auto deadline = config.command_timeout > clock::duration::zero()
                                  ? now + config.command_timeout
                                  : clock::time_point::max();
        const bool in_flight_before = commands.written_count() > 0 || writing_now;
        commands.push({id, std::move(handler), std::move(payload), deadline, caller_deadline,
                       leading_replies});
        commands_sent.fetch_add(1, std::memory_order_relaxed);
        if (watched) {
            watch();
        }
        if (!in_flight_before) {
            start_write();  // a lone command: on the wire now
        } else if (!flush_posted) {
            // Others are on the way: let the commands issued meanwhile join this one in a
            // single write (pipelining) instead of a system call each.
            flush_posted = true;
            asio::post(strand, [self = shared_from_this()] {
                self->flush_posted = false;
                self->start_write();
            });
        }
    }

    /// A cancellation of command `id` arrived (see `async_exec`). On the strand.
    void cancel(std::uint64_t id, asio::cancellation_type type) {
        if (ExecHandler handler = commands.cancel(id, type)) {
            complete(std::move(handler), asio::error::operation_aborted, Reply{});
        }
    }

    /// One write at a time; whatever queued meanwhile goes out in the next one (pipelining).
    void start_write() {
        if (writing_now || !commands.has_unwritten() || !socket_ready) {
            return;
        }
        writing_now = true;
        in_flight.clear();
        commands.take_unwritten(in_flight);
        // Straight to the socket (non-blocking) first: usually it takes everything, and no
        // completion handler runs. Whatever it does not take goes out asynchronously.
        error_code write_ec;
        const std::size_t written = transport.write_now(asio::buffer(in_flight), write_ec);
        if (write_ec) {
            writing_now = false;
            fail(ResultCode::io_error, write_ec.message());
            return;
        }
        if (written == in_flight.size()) {
            writing_now = false;
            return;  // on the strand: nothing was queued meanwhile
        }
        transport.async_write(
            asio::buffer(in_flight) + written,
            asio::bind_executor(strand, [self = shared_from_this()](error_code ec, std::size_t) {
                self->writing_now = false;
                if (ec) {
                    self->fail(ResultCode::io_error, ec.message());
                    return;
                }
                self->start_write();
            }));
    }

    void start_read() {
        transport.async_read_some(
            asio::buffer(read_buffer),
            asio::bind_executor(strand, [self = shared_from_this()](error_code ec, std::size_t n) {
                self->on_read(ec, n);
            }));
    }

    void on_read(error_code ec, std::size_t n) {
        if (ec) {
            if (ec == asio::error::eof && parser.has_partial_reply()) {
                fail(ResultCode::protocol_error, "the server closed the connection mid-reply");
            } else {
                fail(ResultCode::io_error,
                     ec == asio::error::eof ? "the server closed the connection" : ec.message());
            }
            return;
        }
        if (config.health_check_interval > clock::duration::zero()) {
            silent_since = clock::now();
        }
        parser.feed({read_buffer.data(), n});
        // These bytes can only answer commands written before they were read: a handler that
        // runs inline below may write a new command, which must not take a reply already here.
        answerable = commands.written_count();
        for (;;) {
            error_code parse_ec;
            auto reply = parser.next(parse_ec);
            if (parse_ec) {
                fail(ResultCode::protocol_error, parser.error_text());
                return;
            }
            if (!reply) {
                break;
            }
            deliver(std::move(*reply));
            if (closed) {
                return;
            }
        }
        start_read();
    }

    static bool is_push(const Reply& reply) {
        if (reply.type() != ReplyType::array || reply.elements().empty()) {
            return false;
        }
        const auto& kind = reply.elements().front().text();
        return kind == "message" || kind == "pmessage" || kind == "smessage";
    }

    /// A sharded channel's subscription ended by the server (its slot moved away): the array
    /// comes with no command waiting for it. (One of ours, SUNSUBSCRIBE, is answered by the same
    /// array: it then has a command to answer.)
    bool is_dropped_subscription(const Reply& reply) const {
        return answerable == 0 && reply.type() == ReplyType::array && !reply.elements().empty() &&
               reply.elements().front().text() == "sunsubscribe";
    }

    void deliver(Reply reply) {
        if (on_push && (is_push(reply) || is_dropped_subscription(reply))) {
            on_push(std::move(reply));
            return;
        }
        ExecHandler handler;
        const auto answered = answerable == 0 ? detail::CommandQueue::Answered::nothing
                                              : commands.pop_answered(handler);
        if (answered == detail::CommandQueue::Answered::nothing) {
            fail(ResultCode::protocol_error, "a reply arrived that no command asked for");
            return;
        }
        if (answered == detail::CommandQueue::Answered::leading) {
            return;  // ASKING's, ahead of the command it was written with
        }
        --answerable;
        if (!handler) {
            return;  // its command was cancelled after it was written: the reply is dropped
        }
        const error_code ec = reply.error_code();
        if (ec) {
            logger()->debug("keyedpool.redis: error reply: {}", reply.text());
        }
        const bool demoted =
            !config.sentinel.sentinels.empty() && reply.server_error() == ServerError::readonly;
        complete_now(std::move(handler), ec, std::move(reply));
        if (demoted) {
            // Sentinel gave us a primary that is a replica now: the next connection asks again.
            fail(ResultCode::io_error, "the node was demoted to a replica (READONLY)");
        }
    }

    // ---- deadlines: command_timeout, callers' deadlines and the health check, on one timer ------

    /// Arms the timer for the next moment something could be overdue. Only ever moves it
    /// earlier, and never stops it when the queue empties: a timer that fires with nothing owed
    /// just stays unarmed, and one that fires early re-arms itself. So a steady stream of commands
    /// costs about one arming per interval, not one (or two) per command.
    void watch() {
        if (closed || commands.empty()) {
            return;
        }
        auto next = std::min(commands.oldest_deadline(), commands.next_caller_deadline());
        if (config.health_check_interval > clock::duration::zero()) {
            next = std::min(next, silent_since + config.health_check_interval);
        }
        if (next >= watch_armed_at) {
            return;
        }
        watch_armed_at = next;
        watch_timer.expires_at(next);
        watch_timer.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) {
                self->on_watch();
            }
        });
    }

    void on_watch() {
        watch_armed_at = clock::time_point::max();
        if (closed || commands.empty()) {
            return;
        }
        const auto now = clock::now();
        if (commands.oldest_deadline() <= now) {
            fail(ResultCode::timeout,
                 fmt::format(
                     "a command got no reply within command_timeout ({} ms)",
                     std::chrono::duration_cast<std::chrono::milliseconds>(config.command_timeout)
                         .count()));
            return;
        }
        if (config.health_check_interval > clock::duration::zero() &&
            now - silent_since >= config.health_check_interval) {
            fail(ResultCode::timeout,
                 fmt::format(
                     "the server sent nothing for {} ms while commands waited (health "
                     "check)",
                     std::chrono::duration_cast<std::chrono::milliseconds>(now - silent_since)
                         .count()));
            return;
        }
        if (commands.next_caller_deadline() <= now) {
            for (auto& handler : commands.expire(now)) {
                complete(std::move(handler), ResultCode::timeout, Reply{});
            }
        }
        watch();
    }

    /// Closes the connection and fails everything pending with `ec`. Idempotent.
    void fail(error_code ec, const std::string& why) {
        if (closed) {
            return;
        }
        closed = true;
        connected.store(false);
        if (ec != asio::error::operation_aborted) {
            logger()->warn("keyedpool.redis: connection to {} failed: {} ({})",
                           detail::describe_endpoint(config), why, ec.message());
        }
        transport.close();
        if (sentinel_watch) {
            sentinel_watch->close();
        }
        watch_armed_at = clock::time_point::max();
        watch_timer.cancel();
        for (auto& handler : commands.take_all()) {
            complete(std::move(handler), ec, Reply{});
        }
        closed_with = ec;
        for (auto& handler : std::exchange(close_waiters, {})) {
            asio::post(strand, asio::append(std::move(handler), ec));
        }
    }

    /// Completes a command's handler on its associated executor, never inline.
    void complete(ExecHandler handler, error_code ec, Reply reply) {
        asio::post(strand, asio::append(std::move(handler), ec, std::move(reply)));
    }

    /// Completes a command's handler with its reply, from the read loop (never inside the call
    /// that issued the command): dispatched, so it runs at once when its executor is free (a
    /// coroutine resumes without another trip through the scheduler), else queued there.
    void complete_now(ExecHandler handler, error_code ec, Reply reply) {
        asio::dispatch(strand, asio::append(std::move(handler), ec, std::move(reply)));
    }

    asio::strand<executor_type> strand;
    detail::Transport transport;
    asio::steady_timer watch_timer;
    clock::time_point watch_armed_at = clock::time_point::max();  // max: not armed
    clock::time_point silent_since{};  // last byte received, or when the server began to owe one
    ConnectionConfig config;
    detail::ReplyParser parser;
    detail::CommandQueue commands;
    std::string in_flight;  // being written
    bool writing_now = false;
    bool flush_posted = false;   // a start_write is posted: commands queued meanwhile join it
    std::size_t answerable = 0;  // in on_read: written commands the bytes read can answer
    bool socket_ready = false;   // connected: writes may start
    bool closed = false;
    PushHandler on_push;
    std::array<char, 16 * 1024> read_buffer{};
    std::atomic<bool> connected{false};
    std::atomic<std::uint64_t> commands_sent{0};
    std::atomic<std::uint64_t> next_id{1};
    // With Sentinel: the sentinel connection watching for +switch-master, and the primary's
    // configuration epoch (both set before the connection is handed out, then only read).
    std::shared_ptr<Connection> sentinel_watch;
    std::uint64_t config_epoch = 0;
    // async_wait_closed: who waits, and the code the connection closed with.
    std::vector<asio::any_completion_handler<void(error_code)>> close_waiters;
    error_code closed_with;
    ConnectionRegistry& registry;
};

void ConnectionRegistry::shutdown() {
    // The context runs no more handlers: take every handler the connections hold (without
    // invoking them), then destroy them outside the lock, since that may destroy connections.
    std::vector<ExecHandler> handlers;
    std::vector<Connection::PushHandler> push_handlers;
    std::vector<asio::any_completion_handler<void(error_code)>> close_waiters;
    {
        std::lock_guard lock(mutex_);
        for (auto* impl : live_) {
            for (auto& handler : impl->commands.take_all()) {
                handlers.push_back(std::move(handler));
            }
            push_handlers.push_back(std::move(impl->on_push));
            for (auto& waiter : std::exchange(impl->close_waiters, {})) {
                close_waiters.push_back(std::move(waiter));
            }
            impl->closed = true;
        }
    }
}

namespace {

asio::awaitable<Reply> exec_on(
    const std::shared_ptr<Connection::Impl>& impl, std::vector<std::string> command,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max()) {
    auto token = asio::as_tuple(asio::use_awaitable);
    auto [ec, reply] = co_await asio::async_initiate<decltype(token), void(error_code, Reply)>(
        [&](auto handler) {
            asio::dispatch(
                impl->strand, [&impl, &command, deadline, handler = std::move(handler)]() mutable {
                    impl->exec(impl->next_id.fetch_add(1, std::memory_order_relaxed),
                               detail::format_command(command), deadline, std::move(handler));
                });
        },
        token);
    if (ec) {
        throw boost::system::system_error(ec, reply.text());
    }
    co_return reply;
}

/// Resolves, connects, authenticates, selects. Runs on the connection's strand.
asio::awaitable<void> handshake(std::shared_ptr<Connection::Impl> impl) {
    const auto& config = impl->config;
    co_await impl->transport.async_connect(config);  // non-blocking: start_write never blocks
    impl->transport.enable_keepalive(config.health_check_interval);  // see ConnectionConfig
    impl->socket_ready = true;
    impl->connected.store(true);
    impl->start_read();
    try {
        if (!config.password.empty()) {
            std::vector<std::string> auth{"AUTH"};
            if (!config.username.empty()) {
                auth.push_back(config.username);
            }
            auth.push_back(config.password);
            co_await exec_on(impl, std::move(auth));
        }
        if (config.database != 0) {
            co_await exec_on(impl, command("SELECT", config.database));
        }
        if (config.tls.enabled && config.password.empty() && config.database == 0) {
            // With TLS 1.3 the server checks our certificate after the handshake completed on
            // our side: a refusal shows only when the first exchange fails. Make it happen here.
            co_await exec_on(impl, command("PING"));
        }
    } catch (const boost::system::system_error& e) {
        if (config.tls.enabled && e.code() == ResultCode::io_error) {
            throw boost::system::system_error(
                ResultCode::tls_failed,
                "the server closed the TLS connection after the handshake (does it require a "
                "client certificate? tls.cert_file)");
        }
        throw;
    }
}

/// The handshake bounded by connect_timeout; the error, if any, after closing the socket.
asio::awaitable<error_code> connect_within_timeout(std::shared_ptr<Connection::Impl> impl) {
    // When the time is up, failing the connection closes the socket, which ends whatever the
    // handshake waits for (connect, or a reply to AUTH/SELECT that a stuck server never sends).
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(impl->strand, impl->config.connect_timeout);
    timer.async_wait([impl, timed_out](error_code ec) {
        if (!ec) {
            *timed_out = true;
            impl->fail(asio::error::operation_aborted, "connect timeout");
        }
    });
    error_code ec;
    try {
        co_await handshake(impl);
    } catch (const boost::system::system_error& e) {
        // Reply errors (AUTH, SELECT) keep their code; network errors are connect_failed.
        ec = e.code().category() == result_category() ? e.code()
                                                      : error_code(ResultCode::connect_failed);
        if (!*timed_out) {
            logger()->warn("keyedpool.redis: connecting to {} failed: {}",
                           detail::describe_endpoint(impl->config), e.what());
        }
    }
    timer.cancel();
    if (*timed_out) {
        ec = ResultCode::timeout;
        logger()->warn("keyedpool.redis: connecting to {} timed out",
                       detail::describe_endpoint(impl->config));
    }
    if (ec) {
        impl->fail(asio::error::operation_aborted, "connect failed");
    }
    co_return ec;
}

}  // namespace

namespace {

using ImplPtr = std::shared_ptr<Connection::Impl>;
using clock = std::chrono::steady_clock;

/// A connection to the configured server, handshake done; the error instead when it failed.
asio::awaitable<std::pair<error_code, ImplPtr>> open_direct(Connection::executor_type executor,
                                                            ConnectionConfig config) {
    auto impl = std::make_shared<Connection::Impl>(executor, std::move(config));
    auto [e, ec] = co_await asio::co_spawn(impl->strand, connect_within_timeout(impl),
                                           asio::as_tuple(asio::use_awaitable));
    if (e) {
        ec = ResultCode::connect_failed;
    }
    co_return std::pair{ec, ec ? nullptr : impl};
}

/// The primary the sentinels name, confirmed by ROLE, with its epoch and a watch on switches.
/// Sentinels are asked in order until one leads to a confirmed primary; `connect_timeout` bounds
/// it all.
asio::awaitable<std::pair<error_code, ImplPtr>> open_through_sentinel(
    Connection::executor_type executor, ConnectionConfig config) {
    const auto deadline = clock::now() + config.connect_timeout;
    const std::string& name = config.sentinel.master_name;
    error_code last = ResultCode::connect_failed;
    for (std::size_t i = 0; i < config.sentinel.sentinels.size(); ++i) {
        if (clock::now() >= deadline) {
            co_return std::pair{error_code(ResultCode::timeout), nullptr};
        }
        auto answer = co_await detail::ask_sentinel(executor, config, i, deadline);
        if (!answer) {
            continue;
        }
        ConnectionConfig primary_config = config;
        primary_config.host = answer->primary.host;
        primary_config.port = answer->primary.port;
        primary_config.unix_socket.clear();
        primary_config.connect_timeout =
            std::max<clock::duration>(deadline - clock::now(), std::chrono::milliseconds(1));
        auto [ec, impl] = co_await open_direct(executor, std::move(primary_config));
        if (ec) {
            last = ec;
            continue;
        }
        error_code role_ec;
        std::string role;
        try {
            const Reply reply = co_await exec_on(impl, command("ROLE"), deadline);
            role = reply.elements().empty() ? "" : reply.elements().front().text();
        } catch (const boost::system::system_error& e) {
            role_ec = e.code();
        }
        std::optional<std::uint64_t> epoch;
        if (!role_ec && role == "master") {
            epoch = co_await detail::confirm_primary(*answer->sentinel, name, answer->primary,
                                                     deadline);
        } else {
            logger()->warn("keyedpool.redis: {}, named primary of '{}' by a sentinel, is {}",
                           detail::describe_endpoint(impl->config), name,
                           role_ec ? role_ec.message() : "a " + role);
        }
        if (!epoch) {
            impl->fail(asio::error::operation_aborted, "not the primary");
            last =
                role_ec == ResultCode::timeout ? role_ec : error_code(ResultCode::connect_failed);
            continue;
        }
        impl->config_epoch = *epoch;
        std::weak_ptr<Connection::Impl> weak = impl;
        detail::watch_switches(
            answer->sentinel, name, answer->primary, [weak](const Endpoint& moved_to) {
                auto self = weak.lock();
                if (!self) {
                    return;
                }
                const std::string to = moved_to.host + ":" + std::to_string(moved_to.port);
                asio::post(self->strand, [self, to] {
                    self->fail(ResultCode::io_error, "Sentinel switched the primary to " + to);
                });
            });
        impl->sentinel_watch = std::move(answer->sentinel);
        co_return std::pair{error_code{}, impl};
    }
    co_return std::pair{last, nullptr};
}

}  // namespace

void Connection::connect_erased(
    executor_type executor, ConnectionConfig config,
    asio::any_completion_handler<void(error_code, std::shared_ptr<Connection>)> handler) {
    const bool sentinel = !config.sentinel.sentinels.empty();
    auto opening = sentinel ? open_through_sentinel(executor, std::move(config))
                            : open_direct(executor, std::move(config));
    asio::co_spawn(executor, std::move(opening),
                   [executor, handler = std::move(handler)](
                       std::exception_ptr e, std::pair<error_code, ImplPtr> opened) mutable {
                       auto [ec, impl] = std::move(opened);
                       if (e) {
                           ec = ResultCode::connect_failed;
                       }
                       auto connection = ec || !impl ? nullptr : std::make_shared<Connection>(impl);
                       if (!connection && !ec) {
                           ec = ResultCode::connect_failed;
                       }
                       asio::post(executor,
                                  asio::append(std::move(handler), ec, std::move(connection)));
                   });
}

Connection::Connection(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

Connection::~Connection() {
    close();
}

void Connection::exec_erased(std::vector<std::string> command,
                             std::chrono::steady_clock::time_point deadline, bool asking,
                             ExecHandler handler) {
    static const std::string asking_payload = detail::format_command({"ASKING"});
    std::string payload =
        asking ? asking_payload + detail::format_command(command) : detail::format_command(command);
    const std::uint8_t leading_replies = asking ? 1 : 0;
    auto impl = impl_;
    const std::uint64_t id = impl->next_id.fetch_add(1, std::memory_order_relaxed);
    // The slot is the caller's: its handler runs where the caller emits (on the caller's
    // executor) and only posts the cancellation to the strand. It refers to the command by id, so
    // it stays harmless after the command completed (the caller's next operation replaces it).
    if (auto slot = asio::get_associated_cancellation_slot(handler); slot.is_connected()) {
        slot.assign([weak = std::weak_ptr<Impl>(impl), id](asio::cancellation_type type) {
            if (auto self = weak.lock()) {
                asio::post(self->strand, [self, id, type] { self->cancel(id, type); });
            }
        });
    }
    // Dispatched: when the strand is free the command is queued and written from here (exec
    // never completes a handler inline).
    asio::dispatch(impl->strand, [impl, id, deadline, leading_replies, payload = std::move(payload),
                                  handler = std::move(handler)]() mutable {
        impl->exec(id, std::move(payload), deadline, std::move(handler), leading_replies);
    });
}

void Connection::wait_closed_erased(asio::any_completion_handler<void(error_code)> handler) {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl, handler = std::move(handler)]() mutable {
        if (impl->closed) {
            asio::post(impl->strand, asio::append(std::move(handler), impl->closed_with));
        } else {
            impl->close_waiters.push_back(std::move(handler));
        }
    });
}

void Connection::set_push_handler(PushHandler handler) {
    auto impl = impl_;
    asio::dispatch(impl->strand, [impl, handler = std::move(handler)]() mutable {
        impl->on_push = std::move(handler);
    });
}

bool Connection::is_connected() const noexcept {
    return impl_->connected.load();
}

void Connection::close() noexcept {
    impl_->connected.store(false);
    try {
        auto impl = impl_;
        asio::dispatch(impl->strand, [impl] {
            impl->fail(asio::error::operation_aborted, "closed by the user");
        });
    } catch (...) {  // allocation failure: the socket closes when the last reference goes
    }
}

Endpoint Connection::endpoint() const {
    const auto& config = impl_->config;
    if (!config.unix_socket.empty()) {
        return Endpoint{config.unix_socket, 0};
    }
    return Endpoint{config.host, config.port};
}

std::uint64_t Connection::config_epoch() const noexcept {
    return impl_->config_epoch;
}

std::uint64_t Connection::commands_sent() const noexcept {
    return impl_->commands_sent.load(std::memory_order_relaxed);
}

Connection::executor_type Connection::get_executor() const noexcept {
    return impl_->strand;
}

}  // namespace keyedpool::redis
