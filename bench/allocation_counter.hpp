// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Counts heap allocations (global operator new) in a benchmark binary that links
// allocation_counter.cpp, so a benchmark can report allocations per operation.
#ifndef KEYEDPOOL_BENCH_ALLOCATION_COUNTER_HPP
#define KEYEDPOOL_BENCH_ALLOCATION_COUNTER_HPP

#include <cstdint>

namespace keyedpool::bench {

/// Allocations made so far by the whole process (all threads).
std::uint64_t allocations() noexcept;

}  // namespace keyedpool::bench

#endif  // KEYEDPOOL_BENCH_ALLOCATION_COUNTER_HPP
