#!/usr/bin/env bash
# The many-instance topology on one machine (SPEC §8): a Redis Cluster (3 primaries, 3
# replicas), N sessiond instances on it and on one PostgreSQL database, and haproxy in front
# of them (round robin, no stickiness, health-checked on /health/ready). Prints the URL and
# runs until Ctrl-C (or SIGTERM), then stops everything it started.
#
#   scripts/cluster-demo.sh
#
# Environment (all optional):
#   DATABASE_URL   the database (default: postgres://postgres@127.0.0.1:5432/sessiond_demo,
#                  created if missing); it is migrated first.
#   DEMO_PORT      haproxy's port (default 8080).
#   DEMO_INSTANCES how many sessiond instances (default 3).
#   SESSIOND_BIN   the sessiond binary (default: built with `cargo build --release`).
#   JWT_SECRET     shared by the instances (default: 48 random bytes, base64).
# The tests run this same script (tests/integration/cluster_demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

port=${DEMO_PORT:-8080}
instances=${DEMO_INSTANCES:-3}
database_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/sessiond_demo}

for tool in haproxy redis-server redis-cli curl; do
    command -v "$tool" >/dev/null || {
        echo "cluster-demo: $tool is needed (Debian: apt-get install haproxy redis-server redis-tools curl)" >&2
        exit 1
    }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-demo.XXXXXX")
pids=()
stop() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    scripts/redis-cluster.sh stop "$dir/redis" 2>/dev/null || true
    rm -rf "$dir"
    echo "cluster-demo: stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

if [[ -z ${SESSIOND_BIN:-} ]]; then
    cargo build --release --quiet --bin sessiond
    SESSIOND_BIN=target/release/sessiond
fi
secret=${JWT_SECRET:-$(head -c 48 /dev/urandom | base64 | tr -d '\n')}

# A port nobody listens on, for the instances' API and metrics listeners.
free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 10000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "cluster-demo: no free port found" >&2
    return 1
}

if [[ -z ${DATABASE_URL:-} ]] && command -v psql >/dev/null; then
    psql -q "${database_url%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = 'sessiond_demo'" |
        grep -q 1 || psql -q "${database_url%/*}/postgres" -c "CREATE DATABASE sessiond_demo"
fi

scripts/redis-cluster.sh start "$dir/redis" $$ >/dev/null
cluster_urls=$(cat "$dir/redis/urls")

export DATABASE_URL=$database_url REDIS_CLUSTER_URLS=$cluster_urls JWT_SECRET=$secret
export SESSIOND_ENV=production RUST_LOG=${RUST_LOG:-warn}
# haproxy forwards the client's address; the instances believe it from haproxy only.
export SESSIOND_HTTP__TRUSTED_PROXIES='["127.0.0.1/32"]'
"$SESSIOND_BIN" migrate >"$dir/migrate.log" 2>&1 || {
    cat "$dir/migrate.log" >&2
    exit 1
}

servers=""
for i in $(seq 1 "$instances"); do
    api=$(free_port)
    metrics=$(free_port)
    BIND_ADDR=127.0.0.1:$api METRICS_ADDR=127.0.0.1:$metrics \
        "$SESSIOND_BIN" serve >"$dir/sessiond-$i.log" 2>&1 &
    pids+=($!)
    servers+="    server sessiond-$i 127.0.0.1:$api check"$'\n'
    echo "cluster-demo: sessiond-$i on 127.0.0.1:$api (metrics 127.0.0.1:$metrics, log $dir/sessiond-$i.log)"
done

stats_port=$(free_port)
cat >"$dir/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option forwardfor
frontend sessiond
    bind 127.0.0.1:$port
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
    # Which instance answered, for the curious and for the tests.
    http-response set-header X-Served-By %s
$servers
# haproxy's own view of the instances, read below: the demo is up once every one is UP.
frontend stats
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
EOF
haproxy -f "$dir/haproxy.cfg" -db >"$dir/haproxy.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/health/ready" 2>/dev/null; then
        # haproxy answers; wait until its health checks have every instance UP (an
        # instance that answers ready may still wait for its next check: `rise 1`, 1 s).
        up=$(curl -fsS "http://127.0.0.1:$stats_port/stats;csv" 2>/dev/null |
            awk -F, '$1 == "instances" && $2 ~ /^sessiond-/ && $18 == "UP"' | wc -l)
        if ((up == instances)); then
            echo "cluster-demo: http://127.0.0.1:$port/ (haproxy, round robin over $instances instances; Ctrl-C stops everything)"
            wait
        fi
    fi
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || {
            echo "cluster-demo: a process exited early; logs in $dir:" >&2
            tail -n 5 "$dir"/*.log >&2
            exit 1
        }
    done
    sleep 0.1
done
echo "cluster-demo: not ready after 30 s; logs in $dir" >&2
tail -n 5 "$dir"/*.log >&2
exit 1
