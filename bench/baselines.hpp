// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Baselines the benchmarks compare against, measured in the same run.
#ifndef KEYEDPOOL_BENCH_BASELINES_HPP
#define KEYEDPOOL_BENCH_BASELINES_HPP

#include <boost/asio/awaitable.hpp>
#include <boost/asio/detached.hpp>

#include <memory>
#include <mutex>
#include <unordered_map>

namespace keyedpool::bench {

struct Client {
    int key = 0;
};
using ClientPtr = std::shared_ptr<Client>;

/// Floor for try_get: std::mutex + unordered_map::find + shared_ptr copy.
class MutexMap {
  public:
    void put(int key, ClientPtr client) { map_[key] = std::move(client); }
    ClientPtr find(int key) {
        std::lock_guard lock(mutex_);
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : it->second;
    }

  private:
    std::mutex mutex_;
    std::unordered_map<int, ClientPtr> map_;
};

/// Floor for async_get: a plain coroutine returning the client from an unordered_map.
/// The factory of the benchmarks' pools: a client at once.
inline boost::asio::awaitable<ClientPtr> make_client(const int& key) {
    co_return std::make_shared<Client>(Client{key});
}

/// Shuts `pool` down and runs `io` until every client is closed (outside the timed region).
template <typename Pool, typename IoContext>
void shutdown_and_drain(Pool& pool, IoContext& io) {
    pool.async_shutdown(boost::asio::detached);
    io.restart();
    io.run();
}

inline boost::asio::awaitable<ClientPtr> plain_get(std::unordered_map<int, ClientPtr>& map,
                                                   int key) {
    co_return map.find(key)->second;
}

}  // namespace keyedpool::bench

#endif  // KEYEDPOOL_BENCH_BASELINES_HPP
