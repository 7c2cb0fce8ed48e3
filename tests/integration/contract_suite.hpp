// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The frame of a contract suite run on several backends (typed tests): an in-process
// one, a Redis one with a redis-server started for the suite, and a Redis Cluster one with a
// cluster (3 primaries + 3 replicas) started for the suite.
#ifndef KEYEDPOOL_TESTS_CONTRACT_SUITE_HPP
#define KEYEDPOOL_TESTS_CONTRACT_SUITE_HPP

#include "quiet_logger.hpp"
#include "redis_cluster.hpp"
#include "redis_server.hpp"
#include "run_coroutine.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace keyedpool::test {

/// What a backend needs started for its suite.
enum class Needs { nothing, redis_server, redis_cluster };

/// `Backend` provides `static std::unique_ptr<Service> make(asio::io_context&)`, `static constexpr
/// const char* name` and `static constexpr Needs needs`; a Redis backend reads the suite's server
/// from `redis_server()`, a cluster backend its cluster from `redis_cluster()`.
template <typename Backend, typename Service>
class ContractSuite : public ::testing::Test {
  public:
    static RedisServer& redis_server() { return *server_; }
    static RedisCluster& redis_cluster() { return *cluster_; }

  protected:
    static void SetUpTestSuite() {
        if constexpr (Backend::needs == Needs::redis_server) {
            server_ = new RedisServer();
        } else if constexpr (Backend::needs == Needs::redis_cluster) {
            cluster_ = new RedisCluster(3, 1);
        }
    }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
        delete cluster_;
        cluster_ = nullptr;
    }

    void SetUp() override {
        service_ = Backend::make(io_);
        resource_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                    "-" + std::to_string(++counter_);
    }
    void TearDown() override {
        service_.reset();
        io_.restart();
        io_.run_for(std::chrono::milliseconds(200));  // background releases and shutdowns finish
    }

    template <typename Body>
    void run(Body body) {
        run_coroutine(io_, std::move(body));
    }

    boost::asio::awaitable<void> sleep(std::chrono::steady_clock::duration d) {
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
        co_await t.async_wait(boost::asio::use_awaitable);
    }

    static inline RedisServer* server_ = nullptr;
    static inline RedisCluster* cluster_ = nullptr;
    static inline int counter_ = 0;
    QuietLogger quiet_;
    boost::asio::io_context io_;
    std::unique_ptr<Service> service_;
    std::string resource_;
};

/// Names the typed instances by their backend ("Local", "Redis").
struct BackendNames {
    template <typename T>
    static std::string GetName(int) {
        return T::name;
    }
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_CONTRACT_SUITE_HPP
