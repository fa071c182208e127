#!/usr/bin/env bash
# Where a token request's CPU goes under load: perf samples of the release
# server, grouped by component into a table.
#
#   bench/perf.sh                         # client credentials, 64 connections, 8 s sampled
#   SCENARIO=introspect bench/perf.sh
#   OUT_MD=bench/results/<stamp>-profile.md bench/perf.sh   # also write the table there
#
# profile.sh (callgrind) counts instructions, repeatably but blind to the
# kernel, waiting and page faults; this samples time, kernel included, as the
# server really runs: pinned to SERVER_CPU, wrk on LOADGEN_CPU at CONNS
# connections (the client_credentials load of run.sh), `perf record -e
# cpu-clock` (the VM has no hardware counters) with DWARF call stacks, so
# that a system call is charged to the component that made it. Each sample is
# charged to one component by perf-groups.py, which reads its whole stack.
# Needs perf and wrk; root, or perf_event_paranoid <= 1.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
GRANTBOX=${GRANTBOX_BIN:-$TARGET/release/grantbox}
SCENARIO=${SCENARIO:-client_credentials}
CONNS=${CONNS:-64}
SECONDS_SAMPLED=${SECONDS_SAMPLED:-8}
WARMUP=${WARMUP:-3}
FREQ=${FREQ:-999}
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
PORT=${PORT:-38191}
OUT=${OUT:-$TARGET/bench-perf}
SECRET=bench-secret-bench-secret-bench-secret-0001

for tool in perf wrk; do
  command -v $tool >/dev/null || { echo "perf.sh: needs $tool" >&2; exit 2; }
done
case $SCENARIO in client_credentials|introspect) ;; *) echo "perf.sh: SCENARIO is client_credentials or introspect" >&2; exit 2 ;; esac
[[ -n ${GRANTBOX_BIN:-} ]] || cargo build --release -q -p grantbox --bin grantbox --manifest-path "$ROOT/Cargo.toml"

rm -rf "$OUT" && mkdir -p "$OUT"
DB="sqlite://$OUT/grantbox.db"
"$GRANTBOX" --db "$DB" client add bench-client --grant-type client_credentials --scope read --scope write \
  --secret "$SECRET" >/dev/null

taskset -c "$SERVER_CPU" "$GRANTBOX" --db "$DB" serve --listen "127.0.0.1:$PORT" --cache-dir "$OUT/cache" \
  >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.1
done

export CLIENT_ID=bench-client CLIENT_SECRET=$SECRET SCENARIO
if [[ $SCENARIO == introspect ]]; then
  TOKEN=$(curl -fsS -u "bench-client:$SECRET" -d 'grant_type=client_credentials&scope=read' \
    "http://127.0.0.1:$PORT/token" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
  export TOKEN
fi
load() { taskset -c "$LOADGEN_CPU" wrk -t1 -c"$CONNS" -d"$1"s --timeout 5s --latency \
  -s "$BENCH_DIR/wrk/token_load.lua" "http://127.0.0.1:$PORT"; }

load "$WARMUP" >"$OUT/warmup.txt"
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
before=$(ticks)
load $((SECONDS_SAMPLED + 2)) >"$OUT/wrk.txt" &
LOAD=$!
sleep 1
perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,32768 -p "$PID" -o "$OUT/perf.data" \
  -- sleep "$SECONDS_SAMPLED" 2>"$OUT/perf-record.log"
wait $LOAD
after=$(ticks)
kill -INT $PID; wait $PID 2>/dev/null || true
trap - EXIT

requests=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
hz=$(getconf CLK_TCK)
# CPU per request over the whole load (sampling adds a little to it).
cpu_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')

perf script --no-inline -i "$OUT/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$OUT/perf.script"
{
  echo "Profile of \`$SCENARIO\` under load, $(date -u +%Y-%m-%dT%H:%MZ), Grantbox at $(git -C "$ROOT" rev-parse --short HEAD):"
  echo "server on core $SERVER_CPU, wrk \`-t1 -c$CONNS\` on core $LOADGEN_CPU, $rps req/s, $cpu_us µs of server CPU per request,"
  echo "\`perf record -e cpu-clock -F $FREQ --call-graph dwarf\` for $SECONDS_SAMPLED s ($(nproc) × $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1))."
  echo
  python3 "$BENCH_DIR/perf-groups.py" "$OUT/perf.script" "$cpu_us"
} | tee "$OUT/profile.md"
if [[ -n ${OUT_MD:-} ]]; then cp "$OUT/profile.md" "$OUT_MD"; fi
