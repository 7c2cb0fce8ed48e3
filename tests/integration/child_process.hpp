// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. Child processes a test starts (redis-server, lock workers) that never outlive it.
#ifndef KEYEDPOOL_TESTS_CHILD_PROCESS_HPP
#define KEYEDPOOL_TESTS_CHILD_PROCESS_HPP

#include <string>
#include <vector>

#include <sys/types.h>

namespace keyedpool::test {

/// Starts `args[0]` (looked up in PATH when it has no slash) with `args` as its argv. The child is
/// killed with SIGKILL when the thread that started it ends — when the test process exits, crashes
/// or is killed — so a failed or aborted test leaves no server running (and ctest does not wait
/// for one). When `stdout_fd` >= 0 it becomes the child's standard output. Throws
/// `std::runtime_error` naming the program if it cannot be started.
pid_t spawn_bound_child(const std::vector<std::string>& args, int stdout_fd = -1);

}  // namespace keyedpool::test

#endif  // KEYEDPOOL_TESTS_CHILD_PROCESS_HPP
