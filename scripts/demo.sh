#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the examples (Release) and runs the
# main demo. Extra arguments go to the demo (e.g. --ids 4 --requests-per-id 100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target zombie_connections
./build/release/examples/zombie_connections "$@"
