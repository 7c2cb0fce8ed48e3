// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/completion.hpp>
#include <keyedpool/lock_guard.hpp>
#include <keyedpool/logging.hpp>
#include <keyedpool/semaphore.hpp>

#include "lock_state.hpp"

#include <fmt/format.h>
#include <boost/asio/append.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/system_executor.hpp>

#include <atomic>
#include <random>

#include <pthread.h>

namespace keyedpool {

namespace asio = boost::asio;
using boost::system::error_code;

namespace detail {

namespace {

/// Incremented in a child process right after `fork()` (a `pthread_atfork` child handler), so a
/// token generator can tell that it was copied into a new process without asking the kernel for
/// its pid on every token.
std::atomic<unsigned> fork_generation{0};

void count_fork_in_child() {
    fork_generation.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::string random_token() {
    // Seeded per thread, and again after a fork: a child process must not repeat its parent's
    // (or a sibling's) tokens, or two processes would own one lock. A fork copies only the
    // forking thread, with its thread_local generator: the child's handler makes it reseed.
    static const bool fork_counted = ::pthread_atfork(nullptr, nullptr, count_fork_in_child) == 0;
    thread_local std::mt19937_64 engine;
    thread_local bool seeded = false;
    thread_local unsigned seeded_in_generation = 0;
    const unsigned generation = fork_generation.load(std::memory_order_relaxed);
    if (!seeded || seeded_in_generation != generation || !fork_counted) {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(), device(), device()};
        engine.seed(seed);
        seeded = fork_counted;  // without the handler: reseed every time (never repeat)
        seeded_in_generation = generation;
    }
    return fmt::format("{:016x}{:016x}", engine(), engine());
}

LockState::LockState(asio::any_io_executor executor, std::shared_ptr<LockBackend> lock_backend,
                     std::shared_ptr<const TimeSource> time_source,
                     std::shared_ptr<spdlog::logger> logger_of_service)
    : strand(asio::make_strand(executor)),
      backend(std::move(lock_backend)),
      time(time_source ? std::move(time_source) : TimeSource::steady()),
      log(std::move(logger_of_service)),
      lease_timer(time->make_timer(strand)) {}

std::shared_ptr<spdlog::logger> LockState::logger() const {
    return log ? log : keyedpool::logger();
}

void LockState::end_lost_waits() {
    if (renew_timer) {
        renew_timer->cancel();
    }
    for (auto& timer : lost_waits) {
        timer->cancel();
    }
    lost_waits.clear();
}

namespace {

void arm_lease_timer(const std::shared_ptr<LockState>& state) {
    state->lease_timer->expires_at(state->valid_until);
    state->lease_timer->async_wait([weak = std::weak_ptr<LockState>(state)](error_code ec) {
        auto self = weak.lock();
        if (!ec && self && !self->ended.load() && self->time->now() >= self->valid_until) {
            self->mark_lost("the lease ended before it was renewed");
        }
    });
}

// Renews about every lease/3 while the lock is held. A refusal (not_lock_owner) marks the lock
// lost at once; other errors are retried until the lease timer declares it lost.
asio::awaitable<void> watchdog(std::weak_ptr<LockState> weak) {
    for (;;) {
        auto state = weak.lock();
        if (!state || state->ended.load()) {
            co_return;
        }
        state->renew_timer->expires_after(
            std::max<LockState::clock::duration>(state->lease / 3, std::chrono::milliseconds(1)));
        auto& pause = *state->renew_timer;
        state.reset();  // do not keep the lock alive while sleeping (the state owns the timer)
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        state = weak.lock();
        if (!state || state->ended.load()) {
            co_return;
        }
        const auto sent_at = state->time->now();
        const error_code ec = co_await state->backend->renew(*state);
        if (state->ended.load()) {
            co_return;
        }
        if (!ec) {
            state->valid_until = state->validity_from(sent_at);
            arm_lease_timer(state);
        } else if (ec == ResultCode::not_lock_owner) {
            state->mark_lost("a renewal was refused: someone else owns the lock");
            co_return;
        } else {
            state->logger()->warn("keyedpool: renewing the lock on {} failed: {}; retrying",
                                  state->resource, ec.message());
        }
    }
}

}  // namespace

void LockState::start(clock::time_point acquire_sent_at) {
    valid_until = validity_from(acquire_sent_at);
    if (auto_renew) {
        renew_timer = time->make_timer(strand);
    }
    auto self = shared_from_this();
    asio::dispatch(strand, [self] {
        arm_lease_timer(self);
        if (self->auto_renew) {
            asio::co_spawn(self->strand, watchdog(self), asio::detached);
        }
    });
}

void LockState::keep_until_lease_end() {  // on the strand
    if (ended.exchange(true)) {
        return;
    }
    released = true;  // nothing left to release: the lease ends it
    end_lost_waits();
    lease_timer->expires_at(valid_until);
    lease_timer->async_wait([self = shared_from_this()](error_code) {
        self->backend->lease_ended(*self);
        self->local_hold.reset();
    });
}

void LockState::mark_lost(const char* why) {  // on the strand
    if (ended.exchange(true)) {
        return;
    }
    lost.store(true);
    logger()->warn("keyedpool: lost the lock on {} (fencing token {}): {}", resource, fencing_token,
                   why);
    lease_timer->cancel();
    end_lost_waits();
    local_hold.reset();
    lost_signal.emit(asio::cancellation_type::terminal);
}

error_code check_lock_request(const std::string& resource, const LockOptions& options,
                              std::size_t max_resource_bytes,
                              const std::shared_ptr<spdlog::logger>& log) noexcept {
    if (resource.empty() || resource.size() > max_resource_bytes) {
        (log ? log : logger())
            ->warn("keyedpool: refused a lock request: resource name of {} bytes (1..{} allowed)",
                   resource.size(), max_resource_bytes);
        return ResultCode::invalid_argument;
    }
    if (options.lease <= LockState::clock::duration::zero() ||
        options.wait < LockState::clock::duration::zero()) {
        (log ? log : logger())
            ->warn("keyedpool: refused a lock request on {}: lease must be > 0, wait >= 0",
                   resource);
        return ResultCode::invalid_argument;
    }
    return {};
}

error_code check_semaphore_request(const std::string& resource, const SemaphoreOptions& options,
                                   std::size_t max_resource_bytes,
                                   const std::shared_ptr<spdlog::logger>& log) noexcept {
    if (options.limit == 0 || options.permits == 0 || options.permits > options.limit) {
        (log ? log : logger())
            ->warn(
                "keyedpool: refused a semaphore request on {}: permits {} of limit {} "
                "(1 <= permits <= limit)",
                resource.size() <= max_resource_bytes ? resource : std::string("(too long)"),
                options.permits, options.limit);
        return ResultCode::invalid_argument;
    }
    LockOptions as_lock;
    as_lock.wait = options.wait;
    as_lock.lease = options.lease;
    return check_lock_request(resource, as_lock, max_resource_bytes, log);
}

}  // namespace detail

LockGuard::LockGuard(std::shared_ptr<detail::LockState> state) noexcept
    : state_(std::move(state)) {}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
    if (this != &other) {
        release_in_background();
        state_ = std::move(other.state_);
    }
    return *this;
}

LockGuard::~LockGuard() {
    release_in_background();
}

bool LockGuard::owns_lock() const noexcept {
    return state_ && !state_->ended.load();
}
bool LockGuard::lost() const noexcept {
    return state_ && state_->lost.load();
}

const std::string& LockGuard::resource() const noexcept {
    static const std::string none;
    return state_ ? state_->resource : none;
}

asio::any_io_executor LockGuard::get_executor() const noexcept {
    return state_->strand;
}

std::uint64_t LockGuard::fencing_token() const noexcept {
    return state_ ? state_->fencing_token : 0;
}

std::chrono::steady_clock::time_point LockGuard::valid_until() const noexcept {
    return state_ ? state_->valid_until : std::chrono::steady_clock::time_point{};
}

asio::cancellation_slot LockGuard::lost_slot() noexcept {
    return state_ ? state_->lost_signal.slot() : asio::cancellation_slot{};
}

namespace {

// Releases on the lock's strand; the error to report.
asio::awaitable<error_code> release_on_strand(std::shared_ptr<detail::LockState> state) {
    if (state->released) {
        co_return ResultCode::invalid_argument;
    }
    state->released = true;
    const bool was_lost = state->ended.exchange(true);
    state->lease_timer->cancel();
    state->end_lost_waits();
    // Release in the backend even when we think the lock is lost: the script only deletes our own
    // token, and it wakes waiters sooner if the key is still ours after all.
    error_code ec = co_await state->backend->release(*state);
    state->local_hold.reset();
    if (was_lost) {
        co_return ResultCode::lock_lost;
    }
    co_return ec;
}

}  // namespace

void LockGuard::release_erased(asio::any_completion_handler<void(error_code)> handler) {
    auto state = std::move(state_);
    if (!state) {
        // No lock, so no strand: go through the system executor, which hands the handler to its
        // own associated executor (never inline).
        asio::post(asio::system_executor(),
                   asio::append(std::move(handler), error_code(ResultCode::invalid_argument)));
        return;
    }
    auto strand = state->strand;
    asio::co_spawn(
        strand, release_on_strand(std::move(state)),
        [strand, handler = std::move(handler)](std::exception_ptr e, error_code ec) mutable {
            if (e) {
                ec = ResultCode::io_error;
            }
            // co_spawn completes here only after a context switch (it posts when the release
            // never suspended), so this is never inside the initiating call: dispatch.
            asio::dispatch(strand, asio::append(std::move(handler), ec));
        });
}

void LockGuard::wait_lost_erased(asio::any_completion_handler<void(error_code)> handler) {
    if (!state_) {
        asio::post(asio::system_executor(),
                   asio::append(std::move(handler), error_code(asio::error::operation_aborted)));
        return;
    }
    auto state = state_;
    asio::dispatch(state->strand, [state, handler = std::move(handler)]() mutable {
        if (state->lost.load()) {
            asio::post(state->strand, asio::append(std::move(handler), error_code{}));
            return;
        }
        if (state->ended.load()) {
            asio::post(state->strand, asio::append(std::move(handler),
                                                   error_code(asio::error::operation_aborted)));
            return;
        }
        // A timer of its own, so cancelling this wait leaves the others alone. The caller's
        // cancellation is emitted on the caller's executor: forward it to the strand, where the
        // timer lives.
        auto timer = std::make_shared<asio::steady_timer>(
            state->strand, detail::LockState::clock::time_point::max());
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            slot.assign([strand = state->strand,
                         weak = std::weak_ptr<asio::steady_timer>(timer)](asio::cancellation_type) {
                asio::post(strand, [weak] {
                    if (auto t = weak.lock()) {
                        t->cancel();
                    }
                });
            });
        }
        state->lost_waits.push_back(timer);
        timer->async_wait([state, timer, handler = std::move(handler)](error_code) mutable {
            state->lost_waits.remove(timer);
            const error_code result =
                state->lost.load() ? error_code{} : error_code(asio::error::operation_aborted);
            asio::post(state->strand, asio::append(std::move(handler), result));
        });
    });
}

void LockGuard::detach() noexcept {
    if (!state_) {
        return;
    }
    auto state = std::move(state_);
    try {
        auto strand = state->strand;
        asio::dispatch(strand, [state] { state->keep_until_lease_end(); });
    } catch (...) {  // allocation failure: the lease still ends the lock
    }
}

void LockGuard::release_in_background() noexcept {
    if (!state_) {
        return;
    }
    auto state = std::move(state_);
    try {
        auto strand = state->strand;
        asio::co_spawn(
            strand,
            [state]() -> asio::awaitable<void> {
                if (!state->released) {
                    co_await release_on_strand(state);
                }
            },
            [](std::exception_ptr) {});
    } catch (...) {  // allocation failure: the lease ends the lock by itself
    }
}

}  // namespace keyedpool
