#!/usr/bin/env bash
# The README's quick start as a test (issue 18): runs the block between the
# `quickstart:begin` / `quickstart:end` markers as written against a freshly started
# sessiond (dev mode, in memory, as `make run`), changing only the port (a free one) and the
# e-mail (a unique one), so that it runs beside other tests and twice in a row. Any command
# that fails (curl --fail-with-body, jq -e) fails the script.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO=${CARGO:-cargo}
log() { printf 'quickstart: %s\n' "$*" >&2; }

for tool in curl jq python3; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done

"$CARGO" build --quiet --bin sessiond
TARGET_DIR=$("$CARGO" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
WORK=$TARGET_DIR/quickstart
mkdir -p "$WORK"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EMAIL="ann-$(date +%s)-$$@example.com"
SERVER_PID=
cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; fi
    exit "$status"
}
trap cleanup EXIT INT TERM

# As `make run` without DATABASE_URL / REDIS_URL: dev mode, in memory.
env -u DATABASE_URL -u REDIS_URL SESSIOND_ENV=dev BIND_ADDR=127.0.0.1:$PORT METRICS_ADDR=127.0.0.1:0 \
    "$TARGET_DIR/debug/sessiond" serve >"$WORK/sessiond.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "sessiond exited:"; cat "$WORK/sessiond.log" >&2; exit 1; }
    sleep 0.1
done

BLOCK=$(sed -n '/<!-- quickstart:begin -->/,/<!-- quickstart:end -->/p' "$ROOT/README.md" |
    sed '/^<!--/d; /^```/d')
[[ -n $BLOCK ]] || { log "no quick-start block in README.md"; exit 1; }
SCRIPT=${BLOCK//localhost:8080/localhost:$PORT}
SCRIPT=${SCRIPT//ann@example.com/$EMAIL}
log "running the README's quick start against port $PORT as $EMAIL"
bash -euo pipefail -c "$SCRIPT"
log "ok"
