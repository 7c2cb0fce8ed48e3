# Sourced by scripts/demo.sh and scripts/bench.sh: start_loopback_redis starts a throwaway
# redis-server on a free 127.0.0.1 port and sets `redis_port` (empty when none could be started);
# the EXIT trap it installs stops it and removes its directory. Extra arguments go to
# redis-server (scripts/bench.sh adds a unix socket and a TLS port).
redis_port=""
redis_dir=$(mktemp -d)
stop_loopback_redis() {
    if [ -f "$redis_dir/redis.pid" ]; then kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true; fi
    rm -rf "$redis_dir"
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
