// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_CACHE_SHARD_HPP
#define KEYEDPOOL_DETAIL_POOL_CACHE_SHARD_HPP

/// \file
/// One of the pool's 16 cache shards: per key, one node holding what the cache knows (a ready
/// client, or the record of the last failed build) and the key's open flight, under one short lock.

#include <keyedpool/detail/pool/decisions.hpp>

#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace keyedpool::detail::pool {

/// What the shard holds for a key. A node exists while any of its three parts does: a client, a
/// failure record, or an open flight (so one allocation serves a key from its first build on).
template <typename Client, typename Clock, typename FlightPtr>
struct Entry {
    std::shared_ptr<Client> client;          ///< ready client, or null
    typename Clock::time_point last_used{};  ///< when `client` was last handed out
    std::uint64_t seq = 0;                   ///< the pool's event counter when last written
    boost::system::error_code failure;       ///< the last build's error, when `client` is null
    typename Clock::time_point retry_at{};   ///< no rebuild before this, after a failure
    unsigned consecutive_failures = 0;       ///< drives the backoff's growth
    FlightPtr flight;                        ///< the key's open flight, if any

    bool empty() const noexcept { return !client && !failure && !flight; }
};

/// Every member function requires `mutex` to be held by the caller (the coordinator takes it once
/// per decision and does all of that decision's reads and writes under it). Nothing here suspends,
/// calls the factory or closes a client: clients leaving the cache are returned to the caller,
/// which closes them after unlocking.
template <typename Key, typename Client, typename Clock, typename FlightPtr, typename Hash,
          typename KeyEqual>
class alignas(64) CacheShard {
  public:
    using client_ptr = std::shared_ptr<Client>;
    using time_point = typename Clock::time_point;
    using EntryType = Entry<Client, Clock, FlightPtr>;

    mutable std::mutex mutex;

    /// The key's node, or null.
    EntryType* find(const Key& key) {
        auto it = entries_.find(key);
        return it == entries_.end() ? nullptr : &it->second;
    }

    /// The facts `decide_probe` / `decide_miss` need about a node (null: the key has none).
    /// `healthy` is `Traits::is_healthy`; `now()` is read only for a failure record (a hit reads
    /// no clock).
    template <typename Now, typename Healthy>
    static KeyFacts facts(const EntryType* e, Now now, Healthy healthy) {
        KeyFacts f;
        if (e != nullptr) {
            f.has_client = static_cast<bool>(e->client);
            f.client_healthy = f.has_client && healthy(*e->client);
            f.has_failure = !f.has_client && static_cast<bool>(e->failure);
            f.failure_seq = e->seq;
            f.in_backoff = f.has_failure && now() < e->retry_at;
            f.flight_open = static_cast<bool>(e->flight);
        }
        return f;
    }

    /// The cached client of a node that has one; with `track_idle`, marks it used at `now()`.
    template <typename Now>
    client_ptr hand_out(EntryType& e, Now now, bool track_idle) {
        ++hits_;
        if (track_idle) {
            e.last_used = now();
        }
        return e.client;
    }

    /// Forgets the key's client or failure record (not its flight); returns the client (to
    /// close), if any. `found`: whether there was a client or a failure record.
    client_ptr take(const Key& key, bool* found = nullptr) {
        auto it = entries_.find(key);
        const bool any = it != entries_.end() && (it->second.client || it->second.failure);
        if (found) {
            *found = any;
        }
        if (!any) {
            return nullptr;
        }
        client_ptr client = take_client_or_failure(it->second);
        erase_if_empty(it);
        return client;
    }

    /// Caches a client built for the key, replacing a failure record. The key has no client: only
    /// its flight stores one, and a flight starts only when none is cached.
    void store(const Key& key, client_ptr client, time_point now, std::uint64_t seq) {
        EntryType& e = entries_[key];
        if (e.failure) {
            --failure_records_;
        }
        e.failure = {};
        e.consecutive_failures = 0;
        e.client = std::move(client);
        e.last_used = now;
        e.seq = seq;
    }

    /// Records a failed build. `next_delay(n)` gives the backoff after `n` failures in a row
    /// (called only when `ec` starts a backoff). Returns the number of failures in a row.
    template <typename NextDelay>
    unsigned record_failure(const Key& key, boost::system::error_code ec, time_point now,
                            std::uint64_t seq, NextDelay next_delay) {
        EntryType& e = entries_[key];
        if (!e.failure) {
            ++failure_records_;
        }
        const bool backs_off = starts_backoff(ec);
        e.consecutive_failures += backs_off ? 1 : 0;
        e.failure = ec;
        using duration = typename Clock::duration;
        const duration delay =
            backs_off ? duration(next_delay(e.consecutive_failures)) : duration::zero();
        // No delay: no deadline at all. (`now` was read before the lock; a get that read the
        // clock a little earlier must not see a deadline ahead of it.)
        e.retry_at = delay > delay.zero() ? now + delay : time_point::min();
        e.seq = seq;
        if (failure_records_ > prune_threshold_) {
            prune_expired_failures(now);
        }
        return e.consecutive_failures;
    }

    // ---- flights ---------------------------------------------------------------------------

    /// Opens a flight for a key that has none.
    void add_flight(const Key& key, FlightPtr flight) {
        entries_[key].flight = std::move(flight);
        ++flights_;
    }

    /// Forgets the key's flight if it is still `flight` (cleanup by identity).
    template <typename Flight>
    void remove_flight(const Key& key, const Flight* flight) {
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second.flight.get() == flight) {
            it->second.flight.reset();
            --flights_;
            erase_if_empty(it);
        }
    }

    // ---- eviction and shutdown -------------------------------------------------------------

    /// Takes out clients unused for `idle_timeout` that nobody outside the pool holds, and
    /// failure records past their retry deadline. Appends the clients to `victims`.
    void evict_idle(time_point now, typename Clock::duration idle_timeout,
                    std::vector<client_ptr>& victims) {
        for (auto it = entries_.begin(); it != entries_.end();) {
            EntryType& e = it->second;
            const bool idle =
                e.client && now - e.last_used >= idle_timeout && e.client.use_count() == 1;
            const bool expired_failure = e.failure && now >= e.retry_at;
            auto next = std::next(it);
            if (idle || expired_failure) {
                if (auto client = take_client_or_failure(e)) {
                    victims.push_back(std::move(client));
                }
                erase_if_empty(it);
            }
            it = next;
        }
    }

    /// Takes out everything (shutdown): `visit(flight)` sees each open flight, the clients are
    /// appended to `victims`.
    template <typename Visit>
    void drain(std::vector<client_ptr>& victims, Visit visit) {
        for (auto& [key, e] : entries_) {
            if (e.flight) {
                visit(e.flight);
            }
            if (e.client) {
                victims.push_back(std::move(e.client));
            }
        }
        entries_.clear();
        failure_records_ = 0;
        flights_ = 0;
    }

    std::uint64_t hits() const noexcept { return hits_; }
    std::size_t flights() const noexcept { return flights_; }

  private:
    using Map = std::unordered_map<Key, EntryType, Hash, KeyEqual>;

    client_ptr take_client_or_failure(EntryType& e) {
        if (e.failure) {
            --failure_records_;
            e.failure = {};
            e.consecutive_failures = 0;
        }
        return std::move(e.client);
    }

    void erase_if_empty(typename Map::iterator it) {
        if (it->second.empty()) {
            entries_.erase(it);
        }
    }

    /// Drops failure records past their retry deadline (their keys may never be asked for again).
    /// Amortised: runs when the count doubles since the last prune.
    void prune_expired_failures(time_point now) {
        for (auto it = entries_.begin(); it != entries_.end();) {
            auto next = std::next(it);
            if (it->second.failure && now >= it->second.retry_at) {
                take_client_or_failure(it->second);
                erase_if_empty(it);
            }
            it = next;
        }
        prune_threshold_ = std::max<std::size_t>(64, 2 * failure_records_);
    }

    Map entries_;
    std::uint64_t hits_ = 0;
    std::size_t flights_ = 0;          // entries with an open flight
    std::size_t failure_records_ = 0;  // entries holding a failure
    std::size_t prune_threshold_ = 64;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_CACHE_SHARD_HPP
