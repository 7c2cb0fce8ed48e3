// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. An io_context driven by a test on virtual time (virtual_time.hpp).
#ifndef KEYEDPOOL_TESTS_VIRTUAL_IO_HPP
#define KEYEDPOOL_TESTS_VIRTUAL_IO_HPP

#include "virtual_time.hpp"

#include <boost/asio/io_context.hpp>

namespace keyedpool::test {

/// The io_context of a single-threaded test on virtual time. Resets virtual time when created.
class VirtualIo {
  public:
    VirtualIo() { VirtualTime::reset(); }

    boost::asio::io_context& context() noexcept { return io_; }
    auto get_executor() noexcept { return io_.get_executor(); }

    /// Runs every handler that is ready, and those they make ready, without moving time.
    void run() {
        io_.restart();
        while (io_.poll() != 0) {
        }
    }

    /// Moves virtual time forward by `step`, running what each timer that fires sets off.
    void advance(VirtualClock::duration step) {
        VirtualTime::advance(step, [this] { run(); });
    }

    /// Advances until no timer is pending (at most `limit`); returns whether none is.
    bool drain(VirtualClock::duration limit) {
        return VirtualTime::drain(limit, [this] { run(); });
    }

  private:
    boost::asio::io_context io_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_VIRTUAL_IO_HPP
