#!/usr/bin/env bash
# A local Redis Cluster for tests and trials: 3 primaries and 3 replicas from redis-server on
# free ports of 127.0.0.1, no persistence, each node in a directory of its own.
#
#   scripts/redis-cluster.sh start <dir> [<owner-pid>]
#       Starts the cluster under <dir> (created), waits until every node says cluster_state:ok
#       and every replica is in sync, and prints the nodes' ports, one per line (primaries
#       first). <dir>/urls holds the seed list for REDIS_CLUSTER_URLS. With <owner-pid>, the
#       cluster is stopped as soon as that process has exited (a test that died cannot leave
#       it behind).
#   scripts/redis-cluster.sh stop <dir>
#       Stops the nodes started under <dir> (SIGKILL: nothing to save) and removes <dir>.
#   scripts/redis-cluster.sh run -- <command> [<argument>...]
#       Runs the command with TEST_REDIS_CLUSTER_URLS naming a fresh cluster, then stops it.
#
# Failovers are quick (cluster-node-timeout 1000 ms) and replicas sync at once (no diskless
# sync delay) so that start-up and fault tests stay short.
set -euo pipefail

NODES=6
NODE_TIMEOUT_MS=1000

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port whose cluster bus port (+10000) is free too, both below the ephemeral range (where
# the kernel picks the local ports of outgoing connections, which a listener cannot bind).
free_port() {
    local ephemeral port
    ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    local span=$((ephemeral - 10000 - 10000))
    for _ in $(seq 1 200); do
        port=$((10000 + RANDOM % span))
        if port_is_free "$port" && port_is_free $((port + 10000)); then
            echo "$port"
            return
        fi
    done
    echo "redis-cluster: no free port found" >&2
    return 1
}

# Starts one node in <dir>/<port> and sets `started` to its port; a node that cannot bind
# its ports (taken meanwhile) is tried again on others.
start_node() {
    local dir=$1 port pid
    for _ in $(seq 1 20); do
        port=$(free_port)
        mkdir -p "$dir/$port"
        redis-server --port "$port" --bind 127.0.0.1 --protected-mode no \
            --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
            --cluster-node-timeout "$NODE_TIMEOUT_MS" --cluster-replica-validity-factor 0 \
            --repl-diskless-sync-delay 0 \
            --save "" --appendonly no --dir "$dir/$port" --logfile "$dir/$port/redis.log" \
            </dev/null >/dev/null 2>&1 &
        pid=$!
        echo "$pid" >"$dir/$port/pid"
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                started=$port
                return
            fi
            sleep 0.02
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -rf "${dir:?}/$port"
    done
    echo "redis-cluster: no node could start" >&2
    return 1
}

wait_for() { # <what> <seconds> <command...>
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            echo "redis-cluster: $what did not happen within ${seconds}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

cluster_ok_everywhere() {
    local port
    for port in "${ports[@]}"; do
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
        [[ $(redis-cli -p "$port" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p') == "$NODES" ]] || return 1
    done
}

replicas_in_sync() {
    local port
    for port in "${ports[@]:3}"; do
        redis-cli -p "$port" info replication 2>/dev/null | grep -q '^master_link_status:up' || return 1
    done
}

start() {
    local dir=$1 owner=${2:-}
    mkdir -p "$dir"
    ports=()
    local port i started
    for ((i = 0; i < NODES; i++)); do
        start_node "$dir"
        ports+=("$started")
    done
    local addresses=()
    for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
        >"$dir/create.log" 2>&1 || {
        cat "$dir/create.log" >&2
        return 1
    }
    wait_for "cluster_state:ok on every node" 20 cluster_ok_everywhere
    wait_for "every replica in sync" 20 replicas_in_sync
    (IFS=,; echo "${addresses[*]/#/redis://}") >"$dir/urls"
    if [[ -n $owner ]]; then
        # Detached from the caller's output, so that a caller reading it sees its end.
        nohup bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; '$0' stop '$dir'" \
            </dev/null >/dev/null 2>&1 &
    fi
    printf '%s\n' "${ports[@]}"
}

stop() {
    local dir=$1 pidfile
    [[ -d $dir ]] || return 0
    for pidfile in "$dir"/*/pid; do
        [[ -f $pidfile ]] || continue
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$dir"
}

case ${1:-} in
start)
    [[ $# -ge 2 ]] || usage
    # Nothing is left running when start-up fails.
    trap 'status=$?; ((status == 0)) || stop "$2"' EXIT
    start "$2" "${3:-}"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
run)
    [[ ${2:-} == -- && $# -ge 3 ]] || usage
    shift 2
    dir=$(mktemp -d "${TMPDIR:-/tmp}/sessiond-redis-cluster.XXXXXX")
    trap 'stop "$dir"' EXIT
    # In a subshell: the nodes are not jobs of this shell (no "Killed" notices at the end).
    (start "$dir" $$ >/dev/null)
    TEST_REDIS_CLUSTER_URLS=$(cat "$dir/urls") "$@"
    ;;
*)
    usage
    ;;
esac
