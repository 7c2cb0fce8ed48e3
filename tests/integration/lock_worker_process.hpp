// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. A lock_worker process (tests/integration/lock_worker.cpp) a test starts and reads.
// The including target defines LOCK_WORKER_PATH.
#ifndef KEYEDPOOL_TESTS_LOCK_WORKER_PROCESS_HPP
#define KEYEDPOOL_TESTS_LOCK_WORKER_PROCESS_HPP

#include "child_process.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace keyedpool::test {

/// A lock_worker process with its stdout on a pipe.
class Worker {
  public:
    explicit Worker(std::vector<std::string> args) {
        int fds[2];
        if (::pipe(fds) != 0) {
            throw std::runtime_error("pipe failed");
        }
        std::vector<std::string> all{LOCK_WORKER_PATH};
        all.insert(all.end(), args.begin(), args.end());
        ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);  // the read end stays with the test
        try {
            pid_ = spawn_bound_child(all, fds[1]);  // dies with the test process
        } catch (...) {
            ::close(fds[0]);
            ::close(fds[1]);
            throw;
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    ~Worker() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::kill(pid_, SIGCONT);
            wait();
        }
        ::close(out_);
    }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    /// The next line the worker printed, or "" if none came within `limit`.
    std::string read_line(std::chrono::steady_clock::duration limit = std::chrono::seconds(20)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto pos = buffer_.find('\n'); pos != std::string::npos) {
                std::string line = buffer_.substr(0, pos);
                buffer_.erase(0, pos + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return "";
            }
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return "";
            }
            char chunk[256];
            const auto n = ::read(out_, chunk, sizeof chunk);
            if (n <= 0) {
                return "";
            }
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    void signal(int sig) { ::kill(pid_, sig); }

    /// Waits for the process to exit; its exit status.
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

  private:
    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
};

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_LOCK_WORKER_PROCESS_HPP
