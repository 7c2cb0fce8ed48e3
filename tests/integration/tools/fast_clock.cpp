// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// LD_PRELOAD shim for tests: the process's clocks (clock_gettime's realtime and monotonic clocks,
// gettimeofday, time) run KEYEDPOOL_CLOCK_SPEED times as fast as real time from the first reading
// on. Started under it, a redis-server's TIME and key expiry run fast: a lock server whose clock
// is not the clients'. (Debian's libfaketime cannot start redis-server: its jemalloc reads the
// clock while libfaketime initialises.) It reads the real clocks with the system call itself, so
// nothing it calls can come back into it.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <ctime>

#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

namespace {

constexpr std::int64_t nanos_per_second = 1'000'000'000;

std::int64_t real_nanos(clockid_t id) {
    timespec ts{};
    ::syscall(SYS_clock_gettime, id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * nanos_per_second + ts.tv_nsec;
}

int speed() {
    static const int value = [] {
        const char* text = std::getenv("KEYEDPOOL_CLOCK_SPEED");
        const int parsed = text ? std::atoi(text) : 1;
        return parsed > 0 ? parsed : 1;
    }();
    return value;
}

/// Per clock: the real reading at the first call; later readings run `speed` times as fast.
std::int64_t fast_nanos(clockid_t id) {
    static std::atomic<std::int64_t> origin[16];
    const std::int64_t now = real_nanos(id);
    if (id < 0 || id >= 16) {
        return now;
    }
    std::int64_t start = origin[id].load(std::memory_order_relaxed);
    if (start == 0) {
        origin[id].compare_exchange_strong(start, now);
        start = origin[id].load(std::memory_order_relaxed);
    }
    return start + (now - start) * speed();
}

}  // namespace

extern "C" {

int clock_gettime(clockid_t id, timespec* ts) {
    if (ts == nullptr) {
        return -1;
    }
    const std::int64_t nanos = fast_nanos(id);
    ts->tv_sec = static_cast<time_t>(nanos / nanos_per_second);
    ts->tv_nsec = static_cast<long>(nanos % nanos_per_second);
    return 0;
}

int gettimeofday(timeval* tv, void*) {
    if (tv != nullptr) {
        const std::int64_t nanos = fast_nanos(CLOCK_REALTIME);
        tv->tv_sec = static_cast<time_t>(nanos / nanos_per_second);
        tv->tv_usec = static_cast<suseconds_t>(nanos % nanos_per_second / 1000);
    }
    return 0;
}

time_t time(time_t* out) {
    const auto seconds = static_cast<time_t>(fast_nanos(CLOCK_REALTIME) / nanos_per_second);
    if (out != nullptr) {
        *out = seconds;
    }
    return seconds;
}

}  // extern "C"
