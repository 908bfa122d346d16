#!/usr/bin/env bash
# API fuzzing (issue 7): schemathesis against /api/openapi.json of a real sessiond on
# PostgreSQL and Redis, authenticated as a system_admin. Fails on any 5xx and on any answer
# the document does not describe (status, content type, body schema).
#
# Creates its own database (dropped on exit) and its own Redis key prefix (deleted on exit);
# installs a pinned schemathesis into a virtualenv under target/ on first use.
#
# Environment: FUZZ_MAX_EXAMPLES (per operation, default 25), FUZZ_SEED, PGHOST (127.0.0.1),
# PGPORT (5432), PGUSER (postgres), REDIS_URL (redis://127.0.0.1:6379), PYTHON (python3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-25}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export PGHOST PGPORT PGUSER

VENV=$ROOT/target/schemathesis-venv
WORK=$ROOT/target/fuzz-api
mkdir -p "$WORK"

log() { printf 'fuzz-api: %s\n' "$*" >&2; }

# 1. schemathesis, pinned, in its own virtualenv.
if [[ ! -x $VENV/bin/schemathesis ]] ||
    [[ $("$VENV/bin/schemathesis" --version 2>/dev/null) != *" $SCHEMATHESIS_VERSION" ]]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# 2. the binary.
log "building sessiond"
"$CARGO" build --quiet --bin sessiond
TARGET_DIR=$("$CARGO" metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
BINARY=$TARGET_DIR/debug/sessiond

# 3. a database, a key prefix, a port of its own.
RUN_ID="fuzz_$(date +%s)_$$"
DATABASE=sessiond_$RUN_ID
KEY_PREFIX="$RUN_ID:"
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE_URL=http://127.0.0.1:$PORT
SERVER_PID=

cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$DATABASE\" WITH (FORCE)" >/dev/null 2>&1 ||
        log "could not drop database $DATABASE"
    if command -v redis-cli >/dev/null; then
        redis-cli -u "$REDIS_URL" --scan --pattern "$KEY_PREFIX*" |
            xargs -r redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

psql -q -d postgres -c "CREATE DATABASE \"$DATABASE\"" >/dev/null

export SESSIOND_ENV=fuzz
export BIND_ADDR=127.0.0.1:$PORT
# /metrics has a listener of its own (not in the API document): any free port.
export METRICS_ADDR=127.0.0.1:0
export DATABASE_URL=postgres://$PGUSER@$PGHOST:$PGPORT/$DATABASE
export REDIS_URL
export SESSIOND_REDIS__KEY_PREFIX=$KEY_PREFIX
export SESSIOND_DATABASE__MIGRATE_ON_START=true
export JWT_SECRET="fuzz-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
export SESSIOND_ADMIN_EMAIL=fuzz-admin@example.com
export SESSIOND_ADMIN_PASSWORD="fuzz-admin-$RUN_ID"
# Cheap hashing: the fuzzer signs in often.
export SESSIOND_ARGON2__MEMORY_KIB=1024 SESSIOND_ARGON2__ITERATIONS=1
# Every request comes from 127.0.0.1: the per-address sign-in throttle (50 failures per 15
# min) would soon refuse the fuzzer's own sign-in. The per-account throttle stays as it is.
export SESSIOND_SESSIONS__MAX_FAILED_SIGN_INS_PER_IP=1000000
# Likewise the registrations per address (20 per window), which the fuzzer soon exceeds.
export SESSIOND_SESSIONS__MAX_REGISTRATIONS_PER_IP=1000000
export SESSIOND_FUZZ_BASE_URL=$BASE_URL
# The hooks create each token's administrator with `sessiond user create`.
export SESSIOND_FUZZ_BINARY=$BINARY

log "starting sessiond on $BASE_URL (database $DATABASE, Redis prefix $KEY_PREFIX)"
"$BINARY" serve >"$WORK/sessiond.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "$BASE_URL/health/ready" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "sessiond exited; its log:"; cat "$WORK/sessiond.log" >&2; exit 1
    fi
    sleep 0.2
done
curl -fsS "$BASE_URL/health/ready" >/dev/null

# 4. the fuzzing.
log "running schemathesis ($MAX_EXAMPLES examples per operation)"
set +e
# One worker: CPython 3.11's `ast` is not safe across threads, and hypothesis parses its
# lambdas' source from each worker ("AST constructor recursion depth mismatch", a tooling
# error that fails the run before any request). The time limit bounds the run either way.
# From target/: schemathesis keeps its state in the working directory.
cd "$WORK"
PYTHONPATH=$ROOT/tests/schemathesis SCHEMATHESIS_HOOKS=hooks \
    "$VENV/bin/schemathesis" run "$BASE_URL/api/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
    --generation-database none \
    --request-timeout 10 \
    --max-time 210 \
    --no-color
STATUS=$?
set -e
if grep -q ' ERROR \| panicked' "$WORK/sessiond.log"; then
    log "the server logged errors (see $WORK/sessiond.log):"
    grep ' ERROR \| panicked' "$WORK/sessiond.log" | head -20 >&2
fi
exit $STATUS
