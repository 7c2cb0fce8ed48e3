// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_KEYED_MUTEX_HPP
#define KEYEDPOOL_KEYED_MUTEX_HPP

/// \file
/// `KeyedMutex<Key>`: one `AsyncMutex` per key, created on demand and destroyed when unused.

#include <keyedpool/async_mutex.hpp>
#include <keyedpool/result_code.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace keyedpool {

/// A family of asynchronous mutexes, one per key. Locks on different keys never wait on each other.
///
/// The map from key to mutex is guarded by a plain mutex, held only to find, create or drop a key's
/// entry (never while waiting): a lock that is free is taken, and a guard released, without a
/// handler hop. The lock itself is awaited on the key's `AsyncMutex`. An entry exists only while
/// someone holds or waits for its lock, so memory follows the number of keys in use, not the number
/// of keys ever seen.
///
/// Per key, the guarantees of `AsyncMutex` hold: FIFO hand-off, per-operation cancellation of a
/// waiting lock without lost wake-ups, handlers never completed inline.
///
/// Thread safety: distinct objects: safe. Shared object: safe. A `Guard` may outlive the
/// `KeyedMutex` that issued it (they share the map's state).
template <typename Key, typename Hash = std::hash<Key>, typename KeyEqual = std::equal_to<Key>>
class KeyedMutex {
    struct Entry {
        explicit Entry(const boost::asio::any_io_executor& executor) : mutex(executor) {}
        AsyncMutex mutex;
        std::size_t users = 0;  // holders + waiters; guarded by State::map_mutex
    };
    using Map = std::unordered_map<Key, Entry, Hash, KeyEqual>;
    using Node = typename Map::value_type;  // node addresses are stable until erased

    struct State {
        explicit State(boost::asio::any_io_executor ex) : executor(std::move(ex)) {}

        Node& acquire_entry(const Key& key) {
            std::lock_guard lock(map_mutex);
            auto it = map.find(key);
            if (it == map.end()) {
                it = map.emplace(std::piecewise_construct, std::forward_as_tuple(key),
                                 std::forward_as_tuple(executor))
                         .first;
                size.fetch_add(1, std::memory_order_relaxed);
            }
            ++it->second.users;
            return *it;
        }

        void release_entry(Node& node) {
            std::lock_guard lock(map_mutex);
            if (--node.second.users == 0) {
                map.erase(node.first);
                size.fetch_sub(1, std::memory_order_relaxed);
            }
        }

        boost::asio::any_io_executor executor;
        std::mutex map_mutex;              // held only to find, create or drop an entry
        Map map;                           // guarded by map_mutex
        std::atomic<std::size_t> size{0};  // map.size(), readable without the mutex
    };

  public:
    using key_type = Key;
    using executor_type = boost::asio::any_io_executor;

    /// Owns the lock of one key; releases it (and the key's entry, when unused) on destruction.
    /// Move-only. An empty guard owns nothing.
    class Guard {
      public:
        Guard() noexcept = default;
        Guard(Guard&& other) noexcept
            : state_(std::move(other.state_)), node_(std::exchange(other.node_, nullptr)) {}
        Guard& operator=(Guard&& other) noexcept {
            if (this != &other) {
                unlock();
                state_ = std::move(other.state_);
                node_ = std::exchange(other.node_, nullptr);
            }
            return *this;
        }
        ~Guard() { unlock(); }

        bool owns_lock() const noexcept { return node_ != nullptr; }
        explicit operator bool() const noexcept { return owns_lock(); }
        /// The key whose lock is held. Precondition: `owns_lock()`.
        const Key& key() const noexcept { return node_->first; }

        /// Releases the lock now, handing it to the key's next waiter (no-op when empty).
        void unlock() noexcept {
            if (Node* node = std::exchange(node_, nullptr)) {
                node->second.mutex.unlock();
                state_->release_entry(*node);
                state_.reset();
            }
        }

      private:
        friend class KeyedMutex;
        Guard(std::shared_ptr<State> state, Node* node) noexcept
            : state_(std::move(state)), node_(node) {}

        std::shared_ptr<State> state_;
        Node* node_ = nullptr;
    };

    explicit KeyedMutex(executor_type executor)
        : state_(std::make_shared<State>(std::move(executor))) {}

    KeyedMutex(const KeyedMutex&) = delete;
    KeyedMutex& operator=(const KeyedMutex&) = delete;

    executor_type get_executor() const { return state_->executor; }

    /// Waits for the lock of `key`. Handler signature:
    /// `void(boost::system::error_code, KeyedMutex::Guard)`; on success the guard owns the lock, on
    /// error (`operation_aborted` after cancellation or `cancel_waiters()`) it is empty.
    /// Supports per-operation cancellation (terminal, partial, total). Never completes inline.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_lock(Key key, CompletionToken&& token = {}) {
        return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, Guard)>(
            LockOp{state_, std::move(key)}, token, state_->executor);
    }

    /// Takes the lock of `key` now if nobody holds or waits for it: a guard that owns the lock, or
    /// an empty guard. Never waits, never runs a handler.
    Guard try_lock(const Key& key) {
        Node& node = state_->acquire_entry(key);
        if (node.second.mutex.try_lock()) {
            return Guard{state_, &node};
        }
        state_->release_entry(node);
        return Guard{};
    }

    /// `try_lock` as an asynchronous operation. Handler signature:
    /// `void(boost::system::error_code, KeyedMutex::Guard)`: success (the guard owns the lock) or
    /// `ResultCode::lock_busy`. Never completes inline.
    template <typename CompletionToken = boost::asio::use_awaitable_t<>>
    auto async_try_lock(Key key, CompletionToken&& token = {}) {
        return boost::asio::async_compose<CompletionToken, void(boost::system::error_code, Guard)>(
            TryLockOp{this, std::move(key)}, token, state_->executor);
    }

    /// Completes every lock currently waiting, on any key, with `operation_aborted`. Locks held
    /// stay held; later `async_lock` calls wait as usual.
    void cancel_waiters() {
        std::lock_guard lock(state_->map_mutex);
        for (auto& node : state_->map) {
            node.second.mutex.cancel_waiters();
        }
    }

    /// Number of keys that currently have an entry (held or waited for). For diagnostics and tests;
    /// safe to call from any thread, but on a busy mutex the value is immediately stale.
    std::size_t size() const noexcept { return state_->size.load(std::memory_order_relaxed); }

    /// Number of callers holding or waiting for the lock of `key` now (0: free, nobody waits). On a
    /// busy key the value is immediately stale: for decisions that tolerate that (a holder asking
    /// whether anyone is queued behind it), diagnostics and tests.
    std::size_t users(const Key& key) const {
        std::lock_guard lock(state_->map_mutex);
        const auto it = state_->map.find(key);
        return it == state_->map.end() ? 0 : it->second.users;
    }

  private:
    struct LockOp {
        std::shared_ptr<State> state;
        Key key;
        Node* node = nullptr;

        template <typename Self>
        void operator()(Self& self) {
            self.reset_cancellation_state(boost::asio::enable_total_cancellation());
            if (self.cancelled() != boost::asio::cancellation_type::none) {
                boost::asio::post(boost::asio::append(
                    std::move(self),
                    boost::system::error_code(boost::asio::error::operation_aborted)));
                return;
            }
            node = &state->acquire_entry(key);
            node->second.mutex.async_lock(std::move(self));  // never completes inline
        }

        template <typename Self>
        void operator()(Self& self, boost::system::error_code ec) {
            if (ec) {
                if (node != nullptr) {
                    state->release_entry(*node);
                }
                self.complete(ec, Guard{});
                return;
            }
            self.complete(ec, Guard{state, node});
        }
    };

    struct TryLockOp {
        KeyedMutex* mutex;
        Key key;

        template <typename Self>
        void operator()(Self& self) {  // posted: never complete inside the initiation
            Guard guard = mutex->try_lock(key);
            const boost::system::error_code ec =
                guard ? boost::system::error_code{} : make_error_code(ResultCode::lock_busy);
            boost::asio::post(boost::asio::append(std::move(self), ec, std::move(guard)));
        }

        template <typename Self>
        void operator()(Self& self, boost::system::error_code ec, Guard guard) {
            self.complete(ec, std::move(guard));
        }
    };

    std::shared_ptr<State> state_;
};

}  // namespace keyedpool

#endif  // KEYEDPOOL_KEYED_MUTEX_HPP
