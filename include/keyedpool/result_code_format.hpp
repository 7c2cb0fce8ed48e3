// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_RESULT_CODE_FORMAT_HPP
#define KEYEDPOOL_RESULT_CODE_FORMAT_HPP

/// \file
/// fmt support for `ResultCode`: `fmt::format("{}", ResultCode::timeout)` == "timeout".

#include <keyedpool/result_code.hpp>

#include <fmt/format.h>

#include <string_view>

/// Formats a `ResultCode` as its name (`to_string`); format specs of `string_view` apply.
template <>
struct fmt::formatter<keyedpool::ResultCode> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(keyedpool::ResultCode code, FormatContext& ctx) const {
        return fmt::formatter<std::string_view>::format(keyedpool::to_string(code), ctx);
    }
};

#endif  // KEYEDPOOL_RESULT_CODE_FORMAT_HPP
