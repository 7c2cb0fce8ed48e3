#!/usr/bin/env bash
# Builds the benchmarks in Release, runs them (the Redis ones against a redis-server this script
# starts on a free loopback port, beside `redis-benchmark -t set -c 1 -P 1` on the same server),
# writes the JSON to bench/results/, and regenerates docs/benchmarks.md and its charts from it.
# Extra arguments go to every benchmark binary (e.g. --benchmark_repetitions=3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh python3-matplotlib strace
cmake --preset release >/dev/null
cmake --build --preset release --target keyedpool_bench keyedpool_pool_bench keyedpool_memory_bench \
    keyedpool_redis_bench keyedpool_minimal_lock_bench

out=bench/results
mkdir -p "$out"
run() {  # run NAME BINARY [args...]
    local name=$1 binary=$2
    shift 2
    echo "=== $name ==="
    "./build/release/bench/$binary" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
        "$@"
}
# Nanosecond figures on shared cores: the median of 5 repetitions.
run hit_path keyedpool_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true "$@"
run pool keyedpool_pool_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true "$@"
run memory keyedpool_memory_bench "$@"

# shellcheck source=loopback-redis.sh
source scripts/loopback-redis.sh
# The same server also on a unix socket and on TLS (certificates made here), for the transport
# comparison.
tls_dir="$redis_dir/tls"
mkdir -p "$tls_dir"
tls_port=$((20000 + RANDOM % 30000))
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.crt" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" -subj "/CN=localhost" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$tls_dir/san.ext"
openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.crt" -CAkey "$tls_dir/ca.key" \
    -CAcreateserial -out "$tls_dir/server.crt" -days 2 -extfile "$tls_dir/san.ext" 2>/dev/null
start_loopback_redis --unixsocket "$redis_dir/redis.sock" --unixsocketperm 700 \
    --tls-port "$tls_port" --tls-cert-file "$tls_dir/server.crt" \
    --tls-key-file "$tls_dir/server.key" --tls-ca-cert-file "$tls_dir/ca.crt" \
    --tls-auth-clients no
export KEYEDPOOL_BENCH_REDIS_UNIX="$redis_dir/redis.sock"
export KEYEDPOOL_BENCH_REDIS_TLS_PORT="$tls_port" KEYEDPOOL_BENCH_REDIS_TLS_CA="$tls_dir/ca.crt"
if [ -z "$redis_port" ]; then
    echo "bench: no redis-server could be started; the Redis figures are left out" >&2
    rm -f "$out/redis.json" "$out/redis_benchmark.json" "$out/redis_syscalls.json"
else
    echo "=== redis-benchmark -t set -c 1 -P 1 (baseline, same server) ==="
    rps=$(redis-benchmark -p "$redis_port" -t set -c 1 -P 1 -n 20000 -q --csv | tail -1 |
        cut -d, -f2 | tr -d '"')
    echo "SET: $rps requests per second"
    # Its CPU (user + system, of the child) and its system calls, per SET.
    sets=20000
    cpu=$( (redis-benchmark -p "$redis_port" -t set -c 1 -P 1 -n $sets -q >/dev/null; times) |
        tail -1 | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/);
                         print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    strace -f -c -o "$out/strace_redis_benchmark.txt" \
        redis-benchmark -p "$redis_port" -t set -c 1 -P 1 -n $sets -q >/dev/null
    set_syscalls=$(awk '$NF == "total" { print $4 }' "$out/strace_redis_benchmark.txt")
    printf '{"tool": "redis-benchmark -t set -c 1 -P 1 -n %s", "set_per_s": %s, "cpu_us_per_set": %s, "syscalls_per_set": %s}\n' \
        "$sets" "$rps" "$(awk -v c="$cpu" -v n=$sets 'BEGIN { print 1e6 * c / n }')" \
        "$(awk -v c="$set_syscalls" -v n=$sets 'BEGIN { print c / n }')" >"$out/redis_benchmark.json"
    KEYEDPOOL_BENCH_REDIS_PORT=$redis_port run redis keyedpool_redis_bench "$@"
    # Against the minimal lock (SET NX PX + compare-and-delete + polling), same server.
    KEYEDPOOL_BENCH_REDIS_PORT=$redis_port run minimal_lock keyedpool_minimal_lock_bench "$@"
    # The cluster-vs-single-node rows, with a Redis Cluster of 3 loopback primaries started only
    # now and stopped after (its nodes' background work would weigh on the figures above).
    start_loopback_cluster
    if [ -n "$cluster_url" ]; then
        KEYEDPOOL_BENCH_REDIS_PORT=$redis_port KEYEDPOOL_BENCH_REDIS_CLUSTER_URL=$cluster_url \
            run redis_cluster keyedpool_redis_bench --benchmark_filter=ClusterVsSingleNode
    else
        rm -f "$out/redis_cluster.json"
    fi
    stop_loopback_cluster
    # System calls of the uncontended pairs (the whole run: setup adds well under 1%).
    echo "=== system calls per uncontended pair (strace -c) ==="
    KEYEDPOOL_BENCH_REDIS_PORT=$redis_port strace -f -c -o "$out/strace_pairs.txt" \
        ./build/release/bench/keyedpool_redis_bench --benchmark_filter='UncontendedPairs' \
        --benchmark_out="$out/redis_pairs_strace.json" --benchmark_out_format=json >/dev/null
    pair_syscalls=$(awk '$NF == "total" { print $4 }' "$out/strace_pairs.txt")
    pairs=$(/usr/bin/python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['benchmarks'][0]; print(int(b['pairs']))" \
        "$out/redis_pairs_strace.json")
    printf '{"syscalls": %s, "pairs": %s, "syscalls_per_pair": %s}\n' "$pair_syscalls" "$pairs" \
        "$(awk -v c="$pair_syscalls" -v n="$pairs" 'BEGIN { print c / n }')" >"$out/redis_syscalls.json"
    echo "$(cat "$out/redis_syscalls.json")"
fi

# Debian's python3, which has python3-matplotlib (a python3 earlier on PATH may not).
/usr/bin/python3 bench/report.py "$out" docs
echo "bench: wrote $out/*.json, docs/benchmarks.md and docs/images/*.svg"
