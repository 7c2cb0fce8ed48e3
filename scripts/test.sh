#!/usr/bin/env bash
# The README's second command: installs what is missing, then builds and runs the whole test suite
# (ctest) in each configuration: a normal debug build (g++), the same with clang, ASan+UBSan, and TSan
# (multi-threaded tests); then the stress stage. Warnings are errors in all of them.
# Choose stages with arguments, e.g. `scripts/test.sh dev` or `scripts/test.sh tsan stress`.
#
# stress: while a load generator keeps both cores busy, the multi-threaded tests run 20 times under
# TSan and the unit suite 3 times under ASan+UBSan (builds them if needed). They must pass every
# time: a test that depends on timing fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(dev clang asan-ubsan tsan stress)

load_pids=()
start_load() {  # one busy loop per core
    local cores
    cores=$(nproc)
    for _ in $(seq "$cores"); do
        (while :; do :; done) &
        load_pids+=($!)
    done
    echo "==> stress: load generator on ${cores} cores (pids ${load_pids[*]})"
}
stop_load() {
    if [ ${#load_pids[@]} -gt 0 ]; then
        kill "${load_pids[@]}" 2>/dev/null || true
        wait "${load_pids[@]}" 2>/dev/null || true
        load_pids=()
    fi
}
trap stop_load EXIT
trap 'exit 130' INT TERM

build() {  # build PRESET
    cmake --preset "$1" >/dev/null
    cmake --build --preset "$1"
}

stress() {
    build tsan
    build asan-ubsan
    start_load
    ctest --preset tsan --repeat until-fail:20
    ctest --preset asan-ubsan --label-regex '^unit$' --repeat until-fail:3
    stop_load
}

for stage in "${stages[@]}"; do
    echo "==> ${stage}"
    if [ "$stage" = stress ]; then
        stress
        continue
    fi
    build "$stage"
    ctest --preset "$stage"
done
echo "==> all stages passed: ${stages[*]}"
