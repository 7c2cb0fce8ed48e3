// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/redis/cluster.hpp>

#include <array>

namespace keyedpool::redis {

namespace {

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection), one table lookup per
/// byte; the table is computed at compile time.
constexpr std::array<std::uint16_t, 256> make_crc16_table() {
    std::array<std::uint16_t, 256> table{};
    for (unsigned byte = 0; byte < 256; ++byte) {
        auto crc = static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit) {
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
        }
        table[byte] = crc;
    }
    return table;
}

constexpr auto crc16_table = make_crc16_table();

constexpr std::uint16_t crc16(std::string_view data) noexcept {
    std::uint16_t crc = 0;
    for (const char c : data) {
        const auto byte = static_cast<unsigned char>(c);
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ byte) & 0xFF]);
    }
    return crc;
}

static_assert(crc16("123456789") == 0x31C3, "CRC16/XMODEM check value");

}  // namespace

std::uint16_t hash_slot(std::string_view key) noexcept {
    if (const auto open = key.find('{'); open != std::string_view::npos) {
        if (const auto close = key.find('}', open + 1);
            close != std::string_view::npos && close > open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    return static_cast<std::uint16_t>(crc16(key) % cluster_slot_count);
}

}  // namespace keyedpool::redis
