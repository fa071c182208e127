#!/usr/bin/env bash
# Requests per second of examples/resource-server (grantbox-resource-server in
# front of an axum API) against a running Grantbox: GET /public (no layer),
# GET /hello with a warm cache (default TTL 30 s: Grantbox is asked once), and
# GET /hello with RS_CACHE_TTL=0 (every request introspected).
#
#   bench/resource_server.sh            # builds both binaries with --release, then runs
#
# Knobs (env): DURATION=10 CONNS=64 THREADS=1 SERVER_CPU=1 LOADGEN_CPU=0
#   GB_PORT=28190 RS_PORT=28191 (below Linux's ephemeral range)
#   GRANTBOX_BIN=path RS_BIN=path (skip the build)
# Grantbox and the API share SERVER_CPU and wrk runs on LOADGEN_CPU, as in
# run.sh, so with TTL 0 the figure is what one core serves with both the API
# and the introspection it causes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
GB_PORT=${GB_PORT:-28190}
RS_PORT=${RS_PORT:-28191}
SECRET=bench-secret-0123456789abcdefghijklmnop

if [[ -z ${GRANTBOX_BIN:-} || -z ${RS_BIN:-} ]]; then
  (cd "$ROOT" && cargo build --release --workspace --bin grantbox --bin resource-server-example)
fi
GRANTBOX=${GRANTBOX_BIN:-$TARGET/release/grantbox}
RS=${RS_BIN:-$TARGET/release/resource-server-example}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }

pin() { if (( $(nproc) >= 2 )); then echo "taskset -c $1"; fi; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/grantbox-rs-bench.XXXXXX")
GB_PID= RS_PID=
cleanup() {
  for pid in $RS_PID $GB_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

export GRANTBOX_DB="sqlite://$DIR/grantbox.db"
"$GRANTBOX" client add bench-client --grant-type client_credentials --scope read --secret "$SECRET" >/dev/null
"$GRANTBOX" client add bench-api --introspection --secret "$SECRET" >/dev/null
$(pin "$SERVER_CPU") "$GRANTBOX" serve --listen "127.0.0.1:$GB_PORT" --admin-listen 127.0.0.1:0 \
  --cache-dir "$TARGET/e2e-plugin-cache" >"$DIR/grantbox.out" 2>"$DIR/grantbox.log" &
GB_PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$GB_PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -u "bench-client:$SECRET" -d grant_type=client_credentials -d scope=read \
  "http://127.0.0.1:$GB_PORT/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $TOKEN ]] || { echo "no token from grantbox" >&2; cat "$DIR/grantbox.log" >&2; exit 1; }

start_api() { # cache ttl in seconds
  GRANTBOX_ISSUER="http://127.0.0.1:$GB_PORT" RS_CLIENT_ID=bench-api RS_CLIENT_SECRET="$SECRET" \
    RS_CACHE_TTL=$1 RS_LISTEN="127.0.0.1:$RS_PORT" RS_LOG=warn \
    $(pin "$SERVER_CPU") "$RS" >"$DIR/api.out" 2>>"$DIR/api.log" &
  RS_PID=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$RS_PORT/public" >/dev/null && break; sleep 0.1; done
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$RS_PORT/hello")
  [[ $status == 200 ]] || { echo "GET /hello answered $status" >&2; cat "$DIR/api.log" >&2; exit 1; }
}
stop_api() { kill "$RS_PID"; wait "$RS_PID" 2>/dev/null || true; RS_PID=; }

measure() { # label path [header]
  local label=$1 path=$2 out
  shift 2
  out=$($(pin "$LOADGEN_CPU") wrk -t"$THREADS" -c"$CONNS" -d"$DURATION"s --latency "$@" "http://127.0.0.1:$RS_PORT$path")
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '| %s | %s | %s | %s | %s |\n' "$label" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p') x $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s; grantbox and the API on cpu $SERVER_CPU, wrk on cpu $LOADGEN_CPU"
echo
echo "| route | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
start_api 30
measure "GET /public (no layer)" /public
measure "GET /hello, warm cache (TTL 30 s)" /hello -H "Authorization: Bearer $TOKEN"
stop_api
start_api 0
measure "GET /hello, every request introspected (TTL 0)" /hello -H "Authorization: Bearer $TOKEN"
stop_api
