#!/usr/bin/env bash
# The README's second command: installs what is missing, then builds and runs the whole test suite
# (ctest) in each configuration: a normal debug build (g++), the same with clang, ASan+UBSan, and TSan
# (multi-threaded tests). Warnings are errors in all of them.
# Choose configurations with arguments, e.g. `scripts/test.sh dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(dev clang asan-ubsan tsan)

for preset in "${presets[@]}"; do
    echo "==> ${preset}: configure, build, test"
    cmake --preset "${preset}" >/dev/null
    cmake --build --preset "${preset}"
    ctest --preset "${preset}"
done
echo "==> all configurations passed: ${presets[*]}"
