// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#include <keyedpool/time_source.hpp>

namespace keyedpool {

std::shared_ptr<const TimeSource> TimeSource::steady() {
    static const std::shared_ptr<const TimeSource> source = from_traits<SteadyTimeTraits>();
    return source;
}

}  // namespace keyedpool
