// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/detail/async_semaphore.hpp>
#include <keyedpool/local_semaphore_service.hpp>
#include <keyedpool/logging.hpp>

#include "../core/lock_common.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>

#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace keyedpool {

namespace asio = boost::asio;
using boost::system::error_code;

struct LocalSemaphoreService::Impl : detail::LockBackend, std::enable_shared_from_this<Impl> {
    /// One resource's permits: the weighted FIFO, and who holds how many.
    struct Entry {
        explicit Entry(const asio::any_io_executor& executor) : permits(executor, 1) {}
        detail::AsyncSemaphore permits;
        std::size_t users = 0;                                 // waiters + holders; under mutex
        std::unordered_map<std::string, std::size_t> holders;  // token → permits; under mutex
    };

    /// A reference to a resource's entry; the entry goes with its last reference.
    class EntryRef {
      public:
        EntryRef(std::shared_ptr<Impl> impl, const std::string& resource, std::size_t limit)
            : impl_(std::move(impl)) {
            std::lock_guard lock(impl_->mutex);
            auto [it, created] = impl_->entries.try_emplace(resource);
            if (created) {
                it->second = std::make_unique<Entry>(impl_->executor);
            }
            ++it->second->users;
            it->second->permits.set_limit(limit);  // the latest setting counts from now on
            node_ = &*it;
        }
        EntryRef(const EntryRef&) = delete;
        EntryRef& operator=(const EntryRef&) = delete;
        ~EntryRef() {
            std::lock_guard lock(impl_->mutex);
            if (--node_->second->users == 0) {
                impl_->entries.erase(impl_->entries.find(node_->first));
            }
        }
        Entry& entry() const { return *node_->second; }
        Impl& impl() const { return *impl_; }

      private:
        std::shared_ptr<Impl> impl_;
        std::pair<const std::string, std::unique_ptr<Entry>>* node_ = nullptr;
    };

    /// What a holder's lease keeps: its permits, given back when the lease ends (released, lost or
    /// run out).
    struct Held {
        Held(std::shared_ptr<EntryRef> r, std::string t, std::size_t n)
            : ref(std::move(r)), token(std::move(t)), count(n) {}
        Held(const Held&) = delete;  // one owner: the permits go back exactly once
        Held& operator=(const Held&) = delete;
        std::shared_ptr<EntryRef> ref;
        std::string token;
        std::size_t count;
        ~Held() {
            {
                std::lock_guard lock(ref->impl().mutex);
                ref->entry().holders.erase(token);
            }
            ref->entry().permits.release(count);
        }
    };

    Impl(asio::any_io_executor ex, LocalSemaphoreServiceOptions opts)
        : executor(std::move(ex)), options(std::move(opts)) {
        if (!options.time) {
            options.time = TimeSource::steady();
        }
    }

    /// Whether `state.token` still holds permits of its resource.
    bool holds(const detail::LockState& state) {
        std::lock_guard lock(mutex);
        auto it = entries.find(state.resource);
        return it != entries.end() && it->second->holders.count(state.token) != 0;
    }

    asio::awaitable<error_code> renew(detail::LockState& state) override {
        co_return holds(state) && !state.ended.load() ? error_code{}
                                                      : error_code(ResultCode::not_lock_owner);
    }

    asio::awaitable<error_code> release(detail::LockState& state) override {
        // The caller drops the lease's hold next, which gives the permits back.
        co_return holds(state) ? error_code{} : error_code(ResultCode::not_lock_owner);
    }

    using Acquired = std::pair<error_code, PermitGuard>;

    static asio::awaitable<Acquired> acquire(std::shared_ptr<Impl> self, std::string resource,
                                             SemaphoreOptions options, bool try_only) {
        if (auto ec = detail::check_semaphore_request(
                resource, options, self->options.max_resource_bytes, self->options.logger)) {
            co_return Acquired{ec, PermitGuard{}};
        }
        const TimeSource& time = *self->options.time;
        auto ref = std::make_shared<EntryRef>(self, resource, options.limit);
        auto& permits = ref->entry().permits;
        if (try_only || options.wait == std::chrono::steady_clock::duration::zero()) {
            if (!permits.try_acquire(options.permits)) {
                co_return Acquired{try_only ? ResultCode::lock_busy : ResultCode::lock_timeout,
                                   PermitGuard{}};
            }
        } else {
            // Both complete on this coroutine's strand (the acquisition bound to it, or it would
            // complete on the semaphore's executor), so the group's cancellation of the loser never
            // races the winner's completion.
            auto strand = co_await asio::this_coro::executor;
            auto timer = time.make_timer(strand);
            timer->expires_at(time.now() + options.wait);
            auto [order, acquire_ec, timer_ec] =
                co_await asio::experimental::make_parallel_group(
                    asio::bind_executor(strand,
                                        permits.async_acquire(options.permits, asio::deferred)),
                    timer->async_wait(asio::deferred))
                    .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
            (void)order;
            (void)timer_ec;
            if (acquire_ec) {  // the timer won, or we were cancelled
                co_return Acquired{co_await detail::why_the_wait_ended(), PermitGuard{}};
            }
        }
        auto token = detail::random_token();
        {
            std::lock_guard lock(self->mutex);
            ref->entry().holders.emplace(token, options.permits);
        }
        auto held = std::make_shared<Held>(ref, token, options.permits);
        co_return Acquired{
            error_code{},
            PermitGuard{
                detail::make_held_lease(self->executor, self, std::move(resource), std::move(token),
                                        0, options.lease, options.auto_renew, std::move(held),
                                        time.now(), self->options.time, self->options.logger),
                options.permits}};
    }

    asio::any_io_executor executor;
    LocalSemaphoreServiceOptions options;
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries;  // under mutex
};

void validate(const LocalSemaphoreServiceOptions& options) {
    if (options.max_resource_bytes == 0) {
        throw std::invalid_argument("LocalSemaphoreServiceOptions.max_resource_bytes must be > 0");
    }
}

LocalSemaphoreService::LocalSemaphoreService(asio::any_io_executor executor,
                                             LocalSemaphoreServiceOptions options) {
    validate(options);
    impl_ = std::make_shared<Impl>(std::move(executor), std::move(options));
}

LocalSemaphoreService::~LocalSemaphoreService() = default;

asio::any_io_executor LocalSemaphoreService::get_executor() const noexcept {
    return impl_->executor;
}

std::size_t LocalSemaphoreService::in_use(const std::string& resource) const {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->entries.find(resource);
    return it == impl_->entries.end() ? 0 : it->second->permits.in_use();
}

std::size_t LocalSemaphoreService::resources() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->entries.size();
}

void LocalSemaphoreService::acquire_erased(std::string resource, SemaphoreOptions options,
                                           bool try_only, LockDiagnostics* diagnostics,
                                           PermitHandler handler) {
    detail::spawn_lock_operation(impl_->executor,
                                 Impl::acquire(impl_, std::move(resource), options, try_only),
                                 std::move(handler), diagnostics);
}

}  // namespace keyedpool
