#!/usr/bin/env bash
# Installs what keyedpool needs on Debian 12, only if missing. Safe to run repeatedly. Extra
# package names given as arguments are installed too (scripts/bench.sh adds its chart maker).
# Boost must be 1.81 (libboost1.81-dev): Debian's default 1.74 lacks asio::experimental::channel.
set -euo pipefail

packages=(
    g++ clang cmake ninja-build pkg-config
    libboost1.81-dev libboost-url1.81-dev libssl-dev openssl libfmt-dev libspdlog-dev
    googletest libgtest-dev libbenchmark-dev
    redis-server redis-tools
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
    as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
