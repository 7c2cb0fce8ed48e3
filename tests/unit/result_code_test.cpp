// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/result_code.hpp>
#include <keyedpool/result_code_format.hpp>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/error.hpp>

#include <set>
#include <string>

namespace keyedpool {
namespace {

constexpr int first_code = 1;
constexpr int last_code = static_cast<int>(ResultCode::too_many_redirects);

TEST(ResultCode, CategoryIsNamedKeyedpool) {
    boost::system::error_code ec = ResultCode::timeout;
    EXPECT_STREQ(ec.category().name(), "keyedpool");
    EXPECT_EQ(&ec.category(), &result_category());
    EXPECT_EQ(ec.value(), 1);
}

TEST(ResultCode, ValuesAreStable) {
    // Renumbering a code breaks users who persisted or compared raw values.
    EXPECT_EQ(static_cast<int>(ResultCode::timeout), 1);
    EXPECT_EQ(static_cast<int>(ResultCode::cancelled), 2);
    EXPECT_EQ(static_cast<int>(ResultCode::shutting_down), 3);
    EXPECT_EQ(static_cast<int>(ResultCode::connect_failed), 4);
    EXPECT_EQ(static_cast<int>(ResultCode::unhealthy), 5);
    EXPECT_EQ(static_cast<int>(ResultCode::pool_exhausted), 6);
    EXPECT_EQ(static_cast<int>(ResultCode::backoff), 7);
    EXPECT_EQ(static_cast<int>(ResultCode::invalid_argument), 8);
    EXPECT_EQ(static_cast<int>(ResultCode::forbidden), 9);
    EXPECT_EQ(static_cast<int>(ResultCode::auth_failed), 10);
    EXPECT_EQ(static_cast<int>(ResultCode::server_busy), 11);
    EXPECT_EQ(static_cast<int>(ResultCode::write_conflict), 12);
    EXPECT_EQ(static_cast<int>(ResultCode::protocol_error), 13);
    EXPECT_EQ(static_cast<int>(ResultCode::io_error), 14);
    EXPECT_EQ(static_cast<int>(ResultCode::lock_busy), 15);
    EXPECT_EQ(static_cast<int>(ResultCode::lock_timeout), 16);
    EXPECT_EQ(static_cast<int>(ResultCode::lock_lost), 17);
    EXPECT_EQ(static_cast<int>(ResultCode::not_lock_owner), 18);
    EXPECT_EQ(static_cast<int>(ResultCode::server_error), 19);
    EXPECT_EQ(static_cast<int>(ResultCode::tls_failed), 20);
    EXPECT_EQ(static_cast<int>(ResultCode::not_replicated), 21);
    EXPECT_EQ(static_cast<int>(ResultCode::too_many_redirects), 22);
}

TEST(ResultCode, EveryValueHasADistinctNameAndMessage) {
    std::set<std::string> names;
    std::set<std::string> messages;
    for (int value = first_code; value <= last_code; ++value) {
        const auto code = static_cast<ResultCode>(value);
        const boost::system::error_code ec = code;
        names.insert(std::string(to_string(code)));
        messages.insert(ec.message());
        EXPECT_NE(to_string(code), "unknown") << value;
        EXPECT_GT(ec.message().size(), 20u) << value;
    }
    EXPECT_EQ(names.size(), static_cast<std::size_t>(last_code));
    EXPECT_EQ(messages.size(), static_cast<std::size_t>(last_code));
    EXPECT_EQ(to_string(static_cast<ResultCode>(999)), "unknown");
}

TEST(ResultCode, ComparesAsErrorCode) {
    boost::system::error_code ec = make_error_code(ResultCode::lock_busy);
    EXPECT_EQ(ec, ResultCode::lock_busy);
    EXPECT_NE(ec, ResultCode::lock_timeout);
    EXPECT_NE(ec, boost::asio::error::operation_aborted);
    EXPECT_TRUE(ec.failed());
}

TEST(ResultCode, FormatsWithFmt) {
    EXPECT_EQ(fmt::format("{}", ResultCode::write_conflict), "write_conflict");
    EXPECT_EQ(fmt::format("[{:>8}]", ResultCode::timeout), "[ timeout]");
}

TEST(ResultCode, TransientClassificationIsAFunctionOfTheCode) {
    for (auto code :
         {ResultCode::timeout, ResultCode::connect_failed, ResultCode::unhealthy,
          ResultCode::pool_exhausted, ResultCode::backoff, ResultCode::server_busy,
          ResultCode::write_conflict, ResultCode::io_error, ResultCode::lock_busy,
          ResultCode::lock_timeout, ResultCode::not_replicated, ResultCode::too_many_redirects}) {
        EXPECT_TRUE(is_transient(code)) << to_string(code);
    }
    for (auto code : {ResultCode::cancelled, ResultCode::shutting_down,
                      ResultCode::invalid_argument, ResultCode::forbidden, ResultCode::auth_failed,
                      ResultCode::protocol_error, ResultCode::lock_lost, ResultCode::not_lock_owner,
                      ResultCode::server_error, ResultCode::tls_failed}) {
        EXPECT_FALSE(is_transient(code)) << to_string(code);
    }
    EXPECT_FALSE(is_transient(boost::system::error_code{}));
    EXPECT_FALSE(is_transient(boost::asio::error::operation_aborted));
    EXPECT_TRUE(is_transient(boost::asio::error::connection_refused));
    EXPECT_TRUE(is_transient(boost::asio::error::connection_reset));
    EXPECT_TRUE(is_transient(boost::asio::error::eof));
    EXPECT_FALSE(is_transient(boost::asio::error::access_denied));
}

}  // namespace
}  // namespace keyedpool
