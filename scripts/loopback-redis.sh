# Sourced by scripts/demo.sh and scripts/bench.sh: start_loopback_redis starts a throwaway
# redis-server on a free 127.0.0.1 port and sets `redis_port` (empty when none could be started);
# the EXIT trap it installs stops it and removes its directory. Extra arguments go to
# redis-server (scripts/bench.sh adds a unix socket and a TLS port).
redis_port=""
redis_dir=$(mktemp -d)
stop_loopback_redis() {
    for pidfile in "$redis_dir"/*.pid "$redis_dir"/*/*.pid; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    rm -rf "$redis_dir"
}
free_port() {  # prints a port nobody listens on
    local port
    while :; do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
}
# start_loopback_cluster: 3 primaries (cluster-enabled redis-servers, no replicas) joined by
# `redis-cli --cluster create`; sets `cluster_url` (empty when it could not be started). Stopped
# with the loopback server (call start_loopback_redis first: it installs the EXIT trap).
cluster_url=""
stop_loopback_cluster() {
    for pidfile in "$redis_dir"/node*/redis.pid; do
        if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    cluster_url=""
}
start_loopback_cluster() {
    command -v redis-server >/dev/null || return 0
    local nodes=() port
    for i in 1 2 3; do
        port=$(free_port)
        mkdir -p "$redis_dir/node$i"
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$(free_port)" \
            --cluster-node-timeout 1000 --daemonize yes --pidfile "$redis_dir/node$i/redis.pid" \
            --dir "$redis_dir/node$i" --logfile "$redis_dir/node$i/redis.log" >/dev/null || return 0
        nodes+=("127.0.0.1:$port")
    done
    for node in "${nodes[@]}"; do
        for _ in $(seq 1 100); do
            if redis-cli -p "${node##*:}" ping 2>/dev/null | grep -q PONG; then break; fi
            sleep 0.05
        done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null 2>&1 || return 0
    for node in "${nodes[@]}"; do
        for _ in $(seq 1 200); do
            if redis-cli -p "${node##*:}" cluster info 2>/dev/null | grep -q "cluster_state:ok"; then break; fi
            sleep 0.05
        done
    done
    cluster_url="redis-cluster://$(IFS=,; echo "${nodes[*]}")"
}
start_loopback_redis() {  # [extra redis-server arguments...]
    trap stop_loopback_redis EXIT
    command -v redis-server >/dev/null || return 0
    local port
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then  # nobody listens there
            redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
                --daemonize yes --pidfile "$redis_dir/redis.pid" --dir "$redis_dir" \
                --logfile "$redis_dir/redis.log" "$@" >/dev/null
            for _ in $(seq 1 100); do
                if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then redis_port=$port; break; fi
                sleep 0.05
            done
            return 0
        fi
    done
}
