#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the examples (Release) and runs the
# demos: the zombie-connections pool demo, then the two lock examples against a redis-server this
# script starts on a free loopback port (they fall back to the in-process LocalLockService, saying
# so, if no server can be started). Extra arguments go to the pool demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target zombie_connections submit_once relink_list redis_pool

echo
echo "=== 1. KeyedClientPool vs the naive per-key cache ==="
./build/release/examples/zombie_connections "$@"

redis_port=""
redis_dir=$(mktemp -d)
cleanup() {
    if [ -f "$redis_dir/redis.pid" ]; then kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true; fi
    rm -rf "$redis_dir"
}
trap cleanup EXIT
if command -v redis-server >/dev/null; then
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then  # nobody listens there
            redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
                --daemonize yes --pidfile "$redis_dir/redis.pid" --dir "$redis_dir" \
                --logfile "$redis_dir/redis.log" >/dev/null
            for _ in $(seq 1 100); do
                if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then redis_port=$port; break; fi
                sleep 0.05
            done
            break
        fi
    done
fi
redis_args=()
[ -n "$redis_port" ] && redis_args=(--redis-port "$redis_port")

echo
echo "=== 2. Submit once: double-click protection with async_try_lock ==="
./build/release/examples/submit_once "${redis_args[@]}"
echo
echo "=== 3. Relink a shared list: with_lock on the list id, retry on write conflicts ==="
./build/release/examples/relink_list "${redis_args[@]}"
echo
echo "=== 4. A KeyedClientPool of Redis connections keyed by endpoint ==="
if [ -n "$redis_port" ]; then
    ./build/release/examples/redis_pool --redis-port "$redis_port"
else
    echo "no redis-server could be started here; skipped"
fi
