#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the examples (Release) and runs the
# demos: the zombie-connections pool demo, then the two lock examples against a redis-server this
# script starts on a free loopback port (they fall back to the in-process LocalLockService, saying
# so, if no server can be started), the Redis pool, and the fleet budget (4 processes sharing a
# database's 16 connections), and locks over a Redis Cluster of 3 loopback primaries. Extra
# arguments go to the pool demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target zombie_connections submit_once relink_list redis_pool fleet_budget cluster_locks

echo
echo "=== 1. KeyedClientPool vs the naive per-key cache ==="
./build/release/examples/zombie_connections "$@"

# shellcheck source=loopback-redis.sh
source scripts/loopback-redis.sh
start_loopback_redis
redis_args=()
[ -n "$redis_port" ] && redis_args=(--redis-port "$redis_port")

echo
echo "=== 2. Submit once: double-click protection with async_try_lock ==="
submit_args=()
[ -n "$redis_port" ] && submit_args=(--redis-url "redis://127.0.0.1:$redis_port")
./build/release/examples/submit_once "${submit_args[@]}"
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
echo
echo "=== 5. A connection budget shared by 4 processes: max_clients vs a fleet semaphore ==="
./build/release/examples/fleet_budget "${redis_args[@]}"
echo
echo "=== 6. Locks across a Redis Cluster: accounts spread over 3 shards, 4 instances ==="
start_loopback_cluster
if [ -n "$cluster_url" ]; then
    ./build/release/examples/cluster_locks --cluster-url "$cluster_url"
else
    echo "no Redis Cluster could be started here; skipped"
fi
