#!/usr/bin/env bash
# Grantbox's token endpoint under load, side by side with the anchors of
# bench/anchors: same wrk load, same pinning, one server at a
# time, and the ratio Grantbox / anchor within each repetition.
#
#   bench/run.sh               # set up, then REPS x scenarios x servers; writes bench/results/<stamp>.{md,svg}
#   bench/run.sh --setup-only  # build Grantbox, copy and build the anchors, install wrk
#   bench/run.sh --quick       # REPS=1 DURATION=3 WARMUP=1: does everything work?
#   bench/run.sh --smoke       # CI: debug build, every scenario and server once for 2 s,
#                              # no waiting for a quiet machine; results under target/bench-smoke
#
# Knobs (env):
#   REPS=2 DURATION=10 WARMUP=3 CONNS=64 THREADS=1
#   SCENARIOS="client_credentials cc_fixed_rate client_credentials_pg jwt_es256 jwt_rs256 jwt_eddsa authorization_code code_flow introspect refresh refresh_pg device_poll params_attack slow_clients"
#                               (client_credentials_pg, refresh_pg: the same on PostgreSQL, a throwaway
#                               cluster started by this script on LOADGEN_CPU with durable commits and
#                               pg_stat_statements; statements and commits per request are recorded)
#                               (cc_fixed_rate: client credentials at a fixed rate, FIXED_RATE or half
#                               of Grantbox's client_credentials req/s earlier in the same rep, latency
#                               corrected for coordinated omission, by the fixed-rate binary)
#                               (code_flow: the whole code flow of a signed-in user, GET /authorize
#                               -> consent -> decision -> code -> POST /token, CONNS virtual users with
#                               a cookie jar each, driven by the code-flow binary instead of wrk)
#                               (device_poll: devices polling /token for a device code (RFC 8628 §3.4)
#                               that nobody approves, answered authorization_pending or slow_down)
#                               (jwt_<alg>: client credentials whose access tokens are RFC 9068
#                               JWTs signed with <alg>, [keys] default_algorithm; Grantbox alone)
#   ATTACK_CONNS=4 SLOW_CONNS=1000 (params_attack, slow_clients: the attack beside the
#                               client-credentials load, from attack.py on LOADGEN_CPU)
#   CC_SERVERS="grantbox oauth2orize oidc-provider node-floor axum-floor"
#   REFRESH_SERVERS="grantbox oauth2orize"   INTROSPECT_SERVERS="grantbox"   CODE_SERVERS="grantbox oauth2orize"
#   FLOW_SERVERS="grantbox oauth2orize"   FIXED_SERVERS="grantbox"   FIXED_RATE=<req/s>
#   ATTACK_SERVERS="grantbox"   JWT_SERVERS="grantbox"
#   CODE_RATE=8000              (authorization_code: codes seeded per second of warm-up and of run)
#   DEVICES=2000                (device_poll: device authorizations started before the run; 100 in
#                               --smoke unless given)
#   SERVER_CPU=1 LOADGEN_CPU=0 PORT=28180 NICE=-20
#   QUIET_MAX=10 QUIET_WAIT=120 MAX_FOREIGN=4 RETRIES=2
#   FLOOR_CAPACITY=3000000      (axum-floor pre-sized map, as in the anchors' README)
#   WARMUP_TOOL=warmup.py       (wrk: warm up with wrk, which reproduces the cancelled-BEGIN bug, see README)
#   MICRO=0                     (1: also run `cargo bench -p grantbox-bench`, pinned to SERVER_CPU, and add its medians)
#   GRANTBOX_BIN=path           (use this binary instead of building target/release/grantbox)
#   BUILD_PROFILE=release       (dev: build and run Grantbox and seed-codes unoptimised, for --smoke)
#   ANCHORS_SRC=bench/anchors  OUT=bench/results/<stamp> (raw files; ignored by git)
#   SMOKE_ANCHORS=1             (a smoke run builds and loads the anchors too)
#   RESULTS=bench/results/<stamp> (the table and chart: RESULTS.md, RESULTS.svg)
#
# Each run starts the server afresh (empty stores; Grantbox gets a new SQLite
# file in a temp dir and the compiled-plugin cache of earlier runs), waits for
# /healthz, waits 2 s and reads its idle RSS (VmRSS), prepares the scenario
# (tokens to introspect or refresh), warms up for WARMUP s with the same
# requests on CONNS connections (warmup.py), measures DURATION s with wrk, reads the peak RSS (VmHWM) and stops it by its PID.
# Order: rep -> scenario -> server, Grantbox first: A B A B.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
ANCHORS_SRC=${ANCHORS_SRC:-$ROOT/bench/anchors}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ANCHORS=$TARGET/bench-anchors

REPS=${REPS:-2}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
SCENARIOS=${SCENARIOS:-"client_credentials cc_fixed_rate client_credentials_pg jwt_es256 jwt_rs256 jwt_eddsa authorization_code code_flow introspect refresh refresh_pg device_poll params_attack slow_clients"}
JWT_SERVERS=${JWT_SERVERS:-"grantbox"}
CC_SERVERS=${CC_SERVERS:-"grantbox oauth2orize oidc-provider node-floor axum-floor"}
INTROSPECT_SERVERS=${INTROSPECT_SERVERS:-"grantbox"}
CODE_SERVERS=${CODE_SERVERS:-"grantbox oauth2orize"}
FLOW_SERVERS=${FLOW_SERVERS:-"grantbox oauth2orize"}
FIXED_SERVERS=${FIXED_SERVERS:-"grantbox"}
PG_PORT=${PG_PORT:-28432}
declare -A LAST_RPS=()
DEVICE_SERVERS=${DEVICE_SERVERS:-"grantbox"}
DEVICES_GIVEN=${DEVICES:-}
DEVICES=${DEVICES:-2000}
export DEVICE_GRANT_TYPE=urn:ietf:params:oauth:grant-type:device_code
ATTACK_SERVERS=${ATTACK_SERVERS:-"grantbox"}
ATTACK_CONNS=${ATTACK_CONNS:-4}
SLOW_CONNS=${SLOW_CONNS:-1000}
CODE_RATE=${CODE_RATE:-8000}
GB_REDIRECT_URI=https://client.example/cb
# The redirect URI of the anchor's pre-seeded codes (SEED_CODES).
ANCHOR_REDIRECT_URI=http://127.0.0.1/callback
export REDIRECT_URI=$GB_REDIRECT_URI
export CODE_VERIFIER=bench-code-verifier-of-pkce-rfc7636-at-least-43-chars
REFRESH_SERVERS=${REFRESH_SERVERS:-"grantbox oauth2orize"}
SERVER_CPU=${SERVER_CPU:-1}
LOADGEN_CPU=${LOADGEN_CPU:-0}
# Below Linux's ephemeral range (32768-60999): a fixed port inside it can be
# taken by any outgoing connection's local end, and the server then cannot bind.
PORT=${PORT:-28180}
NICE=${NICE:--20}
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT=${QUIET_WAIT:-120}
MAX_FOREIGN=${MAX_FOREIGN:-4}
RETRIES=${RETRIES:-2}
FLOOR_CAPACITY=${FLOOR_CAPACITY:-3000000}
MICRO=${MICRO:-0}
WARMUP_TOOL=${WARMUP_TOOL:-warmup.py}

# The anchors hard-code bench-client / bench-secret; Grantbox wants a secret
# of at least 32 characters, so its clients get a longer one.
ANCHOR_SECRET=bench-secret
GB_SECRET=bench-secret-0123456789abcdefghijklmnop
GB_PASSWORD=wonderland-bench

SETUP_ONLY=0
SMOKE=0
BUILD_PROFILE=${BUILD_PROFILE:-release}
for arg in "$@"; do
  case $arg in
    --setup-only) SETUP_ONLY=1 ;;
    --quick) REPS=1; DURATION=3; WARMUP=1 ;;
    --smoke) SMOKE=1; REPS=1; DURATION=2; WARMUP=1; QUIET_WAIT=0; RETRIES=0; CODE_RATE=2500; DEVICES=${DEVICES_GIVEN:-100}; BUILD_PROFILE=dev
             OUT=${OUT:-$TARGET/bench-smoke/run}; RESULTS=${RESULTS:-$TARGET/bench-smoke/table}; rm -rf "$OUT" ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# A smoke run (CI) exercises Grantbox's side alone, unless SMOKE_ANCHORS=1:
# the anchors need npm ci and a release build. A measuring run needs them.
ANCHORS_PRESENT=1
if [[ $SMOKE == 1 && ${SMOKE_ANCHORS:-0} != 1 ]]; then
  ANCHORS_PRESENT=0; CC_SERVERS=grantbox; REFRESH_SERVERS=grantbox; FLOW_SERVERS=grantbox; CODE_SERVERS=grantbox
elif [[ ! -d $ANCHORS_SRC ]]; then
  echo "no anchors at $ANCHORS_SRC (set ANCHORS_SRC)" >&2; exit 1
fi

PROFILE_DIR=$TARGET/$([[ $BUILD_PROFILE == dev ]] && echo debug || echo "$BUILD_PROFILE")
export BUILD_PROFILE OUT RESULTS

# ------------------------------------------------------------------ setup
setup() {
  if ! command -v wrk >/dev/null; then
    echo "== installing wrk (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  if [[ -z ${GRANTBOX_BIN:-} ]]; then
    echo "== cargo build --profile $BUILD_PROFILE -p grantbox"
    (cd "$ROOT" && cargo build --profile "$BUILD_PROFILE" -q -p grantbox --bin grantbox)
  fi
  echo "== cargo build --profile $BUILD_PROFILE -p grantbox-bench --bin seed-codes --bin code-flow --bin fixed-rate"
  (cd "$ROOT" && cargo build --profile "$BUILD_PROFILE" -q -p grantbox-bench --bin seed-codes --bin code-flow --bin fixed-rate)

  if [[ $ANCHORS_PRESENT == 0 ]]; then
    echo "== smoke run: Grantbox alone (SMOKE_ANCHORS=1 adds the anchors)"
    return
  fi
  echo "== anchors: $ANCHORS_SRC -> $ANCHORS"
  mkdir -p "$ANCHORS"
  # -p keeps mtimes, so unchanged lock files do not trigger a new npm ci.
  cp -rp "$ANCHORS_SRC/." "$ANCHORS/"
  for d in oauth2orize node-oidc-provider; do
    if ! cmp -s "$ANCHORS/$d/package-lock.json" "$ANCHORS/$d/node_modules/.bench-lock.json"; then
      echo "== npm ci in $ANCHORS/$d"
      (cd "$ANCHORS/$d" && npm ci --no-audit --no-fund --loglevel=error)
      cp "$ANCHORS/$d/package-lock.json" "$ANCHORS/$d/node_modules/.bench-lock.json"
    fi
  done
  echo "== cargo build --release (axum-floor)"
  (cd "$ANCHORS/axum-floor" && env -u CARGO_TARGET_DIR cargo build --release -q --target-dir "$ANCHORS/axum-floor/target")
}
if [[ -z ${GRANTBOX_BENCH_AUTOGROUP:-} ]]; then
  setup
  [[ $SETUP_ONLY == 1 ]] && exit 0
fi

# With scheduler autogroups (the Linux default) nice only ranks processes
# within one session, so the measuring part runs in a session of its own whose
# autogroup gets nice NICE: other builds on this machine then get little CPU.
if [[ $NICE != 0 && -w /proc/self/autogroup && -z ${GRANTBOX_BENCH_AUTOGROUP:-} ]]; then
  export GRANTBOX_BENCH_AUTOGROUP=1
  exec setsid --wait bash "$0" "$@"
fi
if [[ -n ${GRANTBOX_BENCH_AUTOGROUP:-} ]]; then
  echo "$NICE" >"/proc/$$/autogroup" 2>/dev/null || echo "could not set the autogroup nice" >&2
fi

GRANTBOX=${GRANTBOX_BIN:-$PROFILE_DIR/grantbox}
NCPU=$(nproc)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$BENCH_DIR/results/$STAMP}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
JSONL=$OUT/runs.jsonl
: >"$JSONL"
CACHE=$TARGET/bench-run/plugin-cache
mkdir -p "$CACHE"

SERVER_PID=
RUN_DIR=
ATTACK_PID=
PG_DIR=
DB_URL=
PG_DB_N=0
cleanup() {
  stop_postgres
  if [[ -n $ATTACK_PID ]]; then kill "$ATTACK_PID" 2>/dev/null || true; wait "$ATTACK_PID" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n $RUN_DIR ]]; then rm -rf "$RUN_DIR"; fi
}
trap cleanup EXIT

pin() { # cpu -> command prefix: nice, and taskset when pinning
  local pre=
  if [[ $NICE != 0 ]]; then pre="nice -n $NICE "; fi
  if [[ -n $1 ]] && (( NCPU >= 2 )); then pre+="taskset -c $1"; fi
  echo "$pre"
}

gb() { "$GRANTBOX" --db "$DB_URL" "$@" >>"$OUT/setup.log" 2>&1; }

# ---------------------------------------------------- PostgreSQL (*_pg)
# A throwaway cluster for the *_pg scenarios, started on first use on the
# load generator's core (the server keeps its own), owned by `postgres`
# (initdb refuses root), with PostgreSQL's durable defaults (fsync and
# synchronous_commit on: a token is on disk before the response) and
# pg_stat_statements to count the statements each request costs.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start_postgres() {
  [[ -n $PG_DIR ]] && return 0
  local bin; bin=$(pg_bin)
  [[ -x $bin/initdb ]] || { echo "no PostgreSQL (initdb) for the *_pg scenarios" >&2; exit 1; }
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/grantbox-bench-pg.XXXXXX")
  [[ $(id -u) == 0 ]] && chown postgres "$PG_DIR"
  as_postgres "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
  $(pin "$LOADGEN_CPU") runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; exit 1; }
  psql_pg postgres "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
}
stop_postgres() {
  [[ -z $PG_DIR ]] && return 0
  as_postgres "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"; PG_DIR=
}
psql_pg() { # database sql -> rows, unaligned
  "$(pg_bin)/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}
# CPU jiffies of this cluster's processes (its postmaster and its children).
pg_jiffies() {
  local total=0 pid postmaster
  postmaster=$(head -1 "$PG_DIR/data/postmaster.pid")
  for pid in "$postmaster" $(pgrep -P "$postmaster" 2>/dev/null); do
    [[ -r /proc/$pid/stat ]] && total=$(( total + $(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
# Statements and commits so far (pg_stat_statements, pg_stat_database).
pg_counts() { # database -> "statements commits"
  psql_pg postgres "SELECT (SELECT COALESCE(sum(calls),0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$1'), (SELECT xact_commit FROM pg_stat_database WHERE datname = '$1')" | tr '|' ' '
}

# The signing algorithm of a jwt_<alg> scenario.
jwt_alg() { # scenario
  case $1 in
    jwt_es256) echo ES256 ;;
    jwt_rs256) echo RS256 ;;
    jwt_eddsa) echo EdDSA ;;
    *) echo "unknown jwt scenario $1" >&2; exit 2 ;;
  esac
}

# Grantbox: a fresh database with the clients (and user) the scenario needs.
prepare_grantbox_db() { # scenario
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/grantbox-bench.XXXXXX")
  DB_URL=sqlite://$RUN_DIR/grantbox.db
  unset GRANTBOX_KEY_ENCRYPTION_KEY
  if [[ $1 == *_pg ]]; then
    # On PostgreSQL the key-encryption key comes from the environment.
    GRANTBOX_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    export GRANTBOX_KEY_ENCRYPTION_KEY
    start_postgres
    PG_DB_N=$((PG_DB_N + 1)); PG_DB=bench_$PG_DB_N
    psql_pg postgres "CREATE DATABASE $PG_DB" >/dev/null
    DB_URL=postgres://postgres@127.0.0.1:$PG_PORT/$PG_DB
  fi
  gb client add bench-client --grant-type client_credentials --scope read --scope write --secret "$GB_SECRET"
  if [[ ${1%_pg} == refresh ]]; then
    gb client add bench-refresh --grant-type password --grant-type refresh_token --scope read --scope write --secret "$GB_SECRET"
    printf '%s' "$GB_PASSWORD" | gb user add alice --password-stdin
  fi
  if [[ $1 == params_attack ]]; then
    gb client add bench-web --grant-type authorization_code --redirect-uri "$REDIRECT_URI" --scope read
  fi
  if [[ $1 == jwt_* ]]; then
    # RFC 9068 access tokens for an audience; the server signs with the
    # scenario's algorithm (the config written here, read by start_server);
    # RS256 is always kept too, for OpenID Connect ID tokens.
    gb client add bench-jwt --grant-type client_credentials --scope read --scope write --secret "$GB_SECRET" \
      --access-token-format jwt --resource https://api.example/
    printf '[keys]\ndefault_algorithm = "%s"\nalgorithms = ["%s", "RS256"]\n' "$(jwt_alg "$1")" "$(jwt_alg "$1")" \
      >"$RUN_DIR/grantbox.toml"
  fi
  if [[ $1 == device_poll ]]; then
    gb client add bench-device --grant-type "$DEVICE_GRANT_TYPE" --scope read --scope write --secret "$GB_SECRET"
  fi
  if [[ $1 == code_flow ]]; then
    gb client add bench-flow --grant-type authorization_code --redirect-uri "$REDIRECT_URI" --scope read --scope write --secret "$GB_SECRET"
    printf '%s' "$GB_PASSWORD" | gb user add alice --password-stdin
  fi
  if [[ $1 == authorization_code ]]; then
    gb client add bench-code --grant-type authorization_code --redirect-uri "$REDIRECT_URI" --scope read --scope write --secret "$GB_SECRET"
  fi
}

# The codes of the authorization_code scenario: "warm-up run", CODE_RATE a second each.
code_pools() { echo "$(( WARMUP * CODE_RATE )) $(( (DURATION + 1) * CODE_RATE ))"; }

start_server() { # name scenario
  local name=$1 log=$OUT/server-$1.log p
  p=$(pin "$SERVER_CPU")
  case $name in
    grantbox)
      prepare_grantbox_db "$2"
      # GRANTBOX_LOG is left at its default (info): what an operator runs.
      local config=()
      [[ -f $RUN_DIR/grantbox.toml ]] && config=(--config "$RUN_DIR/grantbox.toml")
      $p "$GRANTBOX" --db "$DB_URL" "${config[@]}" serve --listen "127.0.0.1:$PORT" --cache-dir "$CACHE" >>"$log" 2>&1 & ;;
    oauth2orize)
      # authorization_code: the anchor seeds its codes at start, seed-0 ..
      # seed-(N-1), enough for the warm-up, the run and the check.
      local seeds=0 warm run
      if [[ $2 == authorization_code ]]; then read -r warm run <<<"$(code_pools)"; seeds=$(( warm + run + 1 )); fi
      SEED_CODES=$seeds NODE_ENV=production PORT=$PORT $p node "$ANCHORS/oauth2orize/server.js" >>"$log" 2>&1 & ;;
    oidc-provider) NODE_ENV=production PORT=$PORT $p node "$ANCHORS/node-oidc-provider/server.js" >>"$log" 2>&1 & ;;
    node-floor)    NODE_ENV=production PORT=$PORT $p node "$ANCHORS/node-floor/server.js" >>"$log" 2>&1 & ;;
    axum-floor)    STORE=dashmap CAPACITY=$FLOOR_CAPACITY PORT=$PORT $p "$ANCHORS/axum-floor/target/release/axum-floor" >>"$log" 2>&1 & ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not come up, see $log" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  if [[ -n $RUN_DIR ]]; then rm -rf "$RUN_DIR"; RUN_DIR=; fi
  if [[ $DB_URL == postgres* ]]; then psql_pg postgres "DROP DATABASE IF EXISTS $PG_DB" >/dev/null || true; fi
  DB_URL=
  sleep 0.5
}

# The credentials the load uses on this server.
creds() { # server scenario -> "id secret"
  local secret=$ANCHOR_SECRET id=bench-client
  [[ $1 == grantbox ]] && secret=$GB_SECRET
  [[ $1 == grantbox && ${2%_pg} == refresh ]] && id=bench-refresh
  [[ $1 == grantbox && $2 == authorization_code ]] && id=bench-code
  [[ $1 == grantbox && $2 == code_flow ]] && id=bench-flow
  [[ $1 == grantbox && $2 == device_poll ]] && id=bench-device
  [[ $1 == grantbox && $2 == jwt_* ]] && id=bench-jwt
  echo "$id $secret"
}

post() { # id secret path body... -> response body; fails on non-2xx
  local id=$1 secret=$2 path=$3; shift 3
  curl -fsS -u "$id:$secret" "$@" "http://127.0.0.1:$PORT$path"
}

json_field() { sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }

# The request the measured load sends: the attack scenarios measure the
# client-credentials load beside their attack.
load_of() { # scenario
  case $1 in
    params_attack|slow_clients|jwt_*|cc_fixed_rate|client_credentials_pg) echo client_credentials ;;
    refresh_pg) echo refresh ;;
    *) echo "$1" ;;
  esac
}

# params_attack, slow_clients: attack.py on the load generator's core, from
# before the warm-up to after the run; waits until the attack runs.
start_attack() { # scenario outfile
  local mode conns p
  case $1 in
    params_attack) mode=params conns=$ATTACK_CONNS ;;
    slow_clients) mode=slow conns=$SLOW_CONNS ;;
    *) return 0 ;;
  esac
  p=$(pin "$LOADGEN_CPU")
  ATTACK_CLIENT_ID=bench-web $p python3 "$BENCH_DIR/attack.py" "$mode" "$PORT" $(( WARMUP + DURATION + 30 )) "$conns" >"$2" 2>&1 &
  ATTACK_PID=$!
  for _ in $(seq 1 600); do
    grep -q READY "$2" && return 0
    kill -0 "$ATTACK_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "attack.py did not start, see $2" >&2; exit 1
}

# Stops the attack; ATTACK_RESULT is its result line, or "none".
stop_attack() { # outfile
  ATTACK_RESULT=none
  [[ -n $ATTACK_PID ]] || return 0
  kill -TERM "$ATTACK_PID" 2>/dev/null || true
  wait "$ATTACK_PID" 2>/dev/null || true
  ATTACK_PID=
  ATTACK_RESULT=$(grep -v READY "$1" | tail -1 | tr -d '"\\' || true)
}

# Scenario set-up on the running server; also checks that the request works.
prepare() { # server scenario
  local id secret body
  read -r id secret <<<"$(creds "$1" "$2")"
  export CLIENT_ID=$id CLIENT_SECRET=$secret SCENARIO=$(load_of "$2") WRK_THREADS=$THREADS
  case $(load_of "$2") in
    client_credentials)
      body=$(post "$id" "$secret" /token -d grant_type=client_credentials -d 'scope=read write')
      [[ -n $(json_field access_token <<<"$body") ]] || { echo "$1: no access token: $body" >&2; exit 1; }
      if [[ $2 == jwt_* ]]; then
        # A JWT of the scenario's algorithm: "eyJ" opens a JSON header.
        local header; header=$(json_field access_token <<<"$body" | cut -d. -f1 | tr '_-' '/+')
        header=$(printf '%s==' "$header" | base64 -d 2>/dev/null || true)
        grep -q "\"alg\":\"$(jwt_alg "$2")\"" <<<"$header" \
          || { echo "$1: not a $(jwt_alg "$2") JWT access token: $header" >&2; exit 1; }
      fi ;;
    introspect)
      body=$(post "$id" "$secret" /token -d grant_type=client_credentials -d 'scope=read write')
      TOKEN=$(json_field access_token <<<"$body"); export TOKEN
      body=$(post "$id" "$secret" /introspect -d "token=$TOKEN")
      grep -q '"active" *: *true' <<<"$body" || { echo "$1: introspection failed: $body" >&2; exit 1; } ;;
    code_flow)
      # One whole flow on one virtual user: signs in, consents, redeems.
      run_flow "$1" 0 1 >"$OUT/flow.check" 2>&1 || { echo "$1: the code flow failed: $(cat "$OUT/flow.check")" >&2; exit 1; } ;;
    authorization_code)
      # Two pools of codes: one for the warm-up, one for the run, CODE_RATE
      # a second each; then one redeemed here to check the request. Grantbox's
      # are seeded through its store (seed-codes); the anchor seeded its own
      # at start (the anchor ignores code_verifier: it has no PKCE).
      local warm run
      read -r warm run <<<"$(code_pools)"
      if [[ $1 == oauth2orize ]]; then
        seq 0 $(( warm - 1 )) | sed 's/^/seed-/' >"$OUT/pool.warmup"
        seq "$warm" $(( warm + run - 1 )) | sed 's/^/seed-/' >"$OUT/pool.measure"
        echo "seed-$(( warm + run ))" >"$OUT/pool.check"
      else
        local seed=$PROFILE_DIR/seed-codes db="sqlite://$RUN_DIR/grantbox.db"
        "$seed" "$db" "$id" "$REDIRECT_URI" "$CODE_VERIFIER" "$warm" "$OUT/pool.warmup"
        "$seed" "$db" "$id" "$REDIRECT_URI" "$CODE_VERIFIER" "$run" "$OUT/pool.measure"
        "$seed" "$db" "$id" "$REDIRECT_URI" "$CODE_VERIFIER" 1 "$OUT/pool.check"
      fi
      body=$(post "$id" "$secret" /token -d grant_type=authorization_code -d "code=$(cat "$OUT/pool.check")" \
        --data-urlencode "redirect_uri=$REDIRECT_URI" -d "code_verifier=$CODE_VERIFIER")
      [[ -n $(json_field access_token <<<"$body") ]] || { echo "$1: code redemption failed: $body" >&2; exit 1; } ;;
    device_poll)
      # DEVICES device authorizations nobody will approve (RFC 8628 §3.1),
      # one pool for the warm-up and the run: each request polls the next
      # device code in turn; a device polled again within its interval hears
      # slow_down, which costs the same (one read and one write of its record).
      seq 1 "$DEVICES" | xargs -P 4 -I{} curl -fsS -u "$id:$secret" -d 'scope=read' \
        "http://127.0.0.1:$PORT/device_authorization" \
        | grep -o '"device_code" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' >"$OUT/pool.measure"
      if (( $(wc -l <"$OUT/pool.measure") < DEVICES )); then echo "$1: could not start $DEVICES device authorizations" >&2; exit 1; fi
      cp "$OUT/pool.measure" "$OUT/pool.warmup"
      body=$(curl -sS -u "$id:$secret" -d "grant_type=$DEVICE_GRANT_TYPE" -d "device_code=$(head -1 "$OUT/pool.measure")" \
        "http://127.0.0.1:$PORT/token")
      grep -q '"error" *: *"authorization_pending"' <<<"$body" || { echo "$1: the first poll is not pending: $body" >&2; exit 1; } ;;
    refresh)
      # Two pools, one for the warm-up and one for the measured run, each with
      # more refresh tokens than connections. Password grant: Grantbox checks
      # an argon2 hash each time, so this takes a few seconds.
      local password=wonderland n=$(( CONNS + 16 ))
      [[ $1 == grantbox ]] && password=$GB_PASSWORD
      for pool in warmup measure; do
        seq 1 "$n" | xargs -P 4 -I{} curl -fsS -u "$id:$secret" -d grant_type=password -d username=alice \
          -d "password=$password" -d 'scope=read write' "http://127.0.0.1:$PORT/token" \
          | grep -o '"refresh_token" *: *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' >"$OUT/pool.$pool"
        if (( $(wc -l <"$OUT/pool.$pool") < n )); then echo "$1: could not get $n refresh tokens" >&2; exit 1; fi
      done
      local rt; rt=$(tail -1 "$OUT/pool.measure")
      # one extra token, to check the request: rotate it once
      body=$(post "$id" "$secret" /token -d grant_type=password -d username=alice -d "password=$password" -d 'scope=read write')
      body=$(post "$id" "$secret" /token -d grant_type=refresh_token -d "refresh_token=$(json_field refresh_token <<<"$body")")
      [[ -n $(json_field refresh_token <<<"$body") && -n $rt ]] || { echo "$1: refresh failed: $body" >&2; exit 1; } ;;
  esac
}

CLK_TCK=$(getconf CLK_TCK)
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; } # busy total
proc_jiffies() { awk '{print $14+$15}' "/proc/$1/stat"; }
busy_pct() {
  local b0 t0 b1 t1
  read -r b0 t0 <<<"$(cpu_jiffies)"; sleep 2; read -r b1 t1 <<<"$(cpu_jiffies)"
  echo $(( (b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1) ))
}
wait_quiet() { # waits until the machine is below QUIET_MAX % busy, QUIET_WAIT s at most
  local waited=0 b
  while b=$(busy_pct); (( b > QUIET_MAX )); do
    (( waited == 0 )) && echo "   machine ${b}% busy (other work), waiting for < ${QUIET_MAX}% ..." >&2
    if (( waited >= QUIET_WAIT )); then echo "   still ${b}% busy after ${waited}s, running anyway" >&2; break; fi
    sleep 3; waited=$((waited + 5))
  done
  PRE_BUSY=$b
}
# Answers that count as errors: non-2xx, except for device_poll, where every
# answer is a 400 and only those neither pending nor slow_down count.
status_errors() { # scenario benchjson
  if [[ $1 == device_poll ]]; then jf unexpected "$2"; else jf err_status "$2"; fi
}
status_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
jf() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }

# The code_flow load: the code-flow binary on the load generator's core.
run_flow() { # server seconds conns
  local redirect=$REDIRECT_URI username=alice password=$GB_PASSWORD id secret
  read -r id secret <<<"$(creds "$1" code_flow)"
  if [[ $1 == oauth2orize ]]; then redirect=http://127.0.0.1/callback password=wonderland; fi
  $(pin "$LOADGEN_CPU") "$PROFILE_DIR/code-flow" "$1" "$PORT" "$2" "$3" "$id" "$secret" "$redirect" "$username" "$password"
}

run_wrk() { # seconds outfile refresh-pool ; sets WRK_CPU_S
  local p TIMEFORMAT='%3U %3S' u s
  p=$(pin "$LOADGEN_CPU")
  if [[ $SCENARIO_NAME == cc_fixed_rate ]]; then
    # Half of Grantbox's own maximum, measured earlier in this repetition.
    local rate=${FIXED_RATE:-$(( ${LAST_RPS[client_credentials.grantbox]:-2000} / 2 ))}
    { time $p "$PROFILE_DIR/fixed-rate" "$PORT" "$1" "$rate" "$CONNS" "$CLIENT_ID" "$CLIENT_SECRET" >"$2" 2>&1 ; } 2>"$2.time"
    read -r u s <"$2.time"
    WRK_CPU_S=$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')
    return
  fi
  if [[ $SCENARIO == code_flow ]]; then
    { time run_flow "$SERVER_NAME" "$1" "$CONNS" >"$2" 2>&1 ; } 2>"$2.time"
    read -r u s <"$2.time"
    WRK_CPU_S=$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')
    return
  fi
  { time REFRESH_FILE=$3 CODE_FILE=$3 DEVICE_FILE=$3 $p wrk -t"$THREADS" -c"$CONNS" -d"$1"s --timeout 5s --latency \
      -s "$BENCH_DIR/wrk/token_load.lua" "http://127.0.0.1:$PORT" >"$2" 2>&1 ; } 2>"$2.time"
  read -r u s <"$2.time"
  WRK_CPU_S=$(awk -v u="$u" -v s="$s" 'BEGIN{print u+s}')
}

# The warm-up: by default warmup.py, whose connections each finish their last
# request; WARMUP_TOOL=wrk warms up with wrk as the anchors' run-anchors.sh does
# (wrk leaves a request in flight on every connection when it stops).
warm_up() { # scenario outfile
  local p
  p=$(pin "$LOADGEN_CPU")
  if [[ $1 == code_flow ]]; then
    run_flow "$SERVER_NAME" "$WARMUP" "$CONNS" >"$2" 2>&1 || { echo "warm-up failed, see $2" >&2; exit 1; }
    return
  fi
  if [[ $WARMUP_TOOL == wrk ]]; then
    run_wrk "$WARMUP" "$2" "$OUT/pool.warmup"
  else
    $p python3 "$BENCH_DIR/warmup.py" "$1" "$PORT" "$WARMUP" "$CONNS" "$OUT/pool.warmup" >"$2" 2>&1 \
      || { echo "warm-up failed, see $2" >&2; exit 1; }
  fi
}

servers_for() {
  case $1 in
    client_credentials) echo "$CC_SERVERS" ;;
    introspect) echo "$INTROSPECT_SERVERS" ;;
    refresh) echo "$REFRESH_SERVERS" ;;
    authorization_code) echo "$CODE_SERVERS" ;;
    code_flow) echo "$FLOW_SERVERS" ;;
    cc_fixed_rate) echo "$FIXED_SERVERS" ;;
    client_credentials_pg|refresh_pg) echo grantbox ;;
    device_poll) echo "$DEVICE_SERVERS" ;;
    params_attack|slow_clients) echo "$ATTACK_SERVERS" ;;
    jwt_*) echo "$JWT_SERVERS" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $NCPU, kernel $(uname -r)"
  echo "grantbox $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- host plugins plugin-sdk 2>/dev/null || echo '+changes'), $(rustc --version)"
  echo "node $(node --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "autogroup: $(cat /proc/$$/autogroup 2>/dev/null || echo none)"
  echo "reps=$REPS duration=${DURATION}s warmup=${WARMUP}s (${WARMUP_TOOL}) wrk=-t$THREADS -c$CONNS server_cpu=$SERVER_CPU loadgen_cpu=$LOADGEN_CPU nice=$NICE max_foreign=${MAX_FOREIGN}%"
} | tee "$OUT/env.txt"

total=0
for sc in $SCENARIOS; do total=$(( total + REPS * $(wc -w <<<"$(servers_for "$sc")") )); done
n=0
for rep in $(seq 1 "$REPS"); do
  for sc in $SCENARIOS; do
    for srv in $(servers_for "$sc"); do
      n=$((n + 1))
      attempt=0
      while :; do
        attempt=$((attempt + 1))
        SERVER_NAME=$srv SCENARIO_NAME=$sc
        wait_quiet
        REDIRECT_URI=$GB_REDIRECT_URI
        [[ $srv == oauth2orize ]] && REDIRECT_URI=$ANCHOR_REDIRECT_URI
        start_server "$srv" "$sc"
        sleep 2
        idle_rss=$(status_kb "$SERVER_PID" VmRSS)
        prepare "$srv" "$sc"
        prepared_rss=$(status_kb "$SERVER_PID" VmRSS)
        start_attack "$sc" "$OUT/$sc.$srv.$rep.attack.txt"
        warm_up "$(load_of "$sc")" "$OUT/$sc.$srv.$rep.warmup.txt"
        a0=0; [[ -n $ATTACK_PID ]] && a0=$(proc_jiffies "$ATTACK_PID")
        pg0=0 pgs0=0 pgc0=0
        if [[ $sc == *_pg ]]; then pg0=$(pg_jiffies); read -r pgs0 pgc0 <<<"$(pg_counts "$PG_DB")"; fi
        read -r b0 t0 <<<"$(cpu_jiffies)"; s0=$(proc_jiffies "$SERVER_PID"); w0=$(date +%s.%N)
        run_wrk "$DURATION" "$OUT/$sc.$srv.$rep.txt" "$OUT/pool.measure"
        read -r b1 t1 <<<"$(cpu_jiffies)"; s1=$(proc_jiffies "$SERVER_PID"); w1=$(date +%s.%N)
        a1=0; [[ -n $ATTACK_PID ]] && a1=$(proc_jiffies "$ATTACK_PID")
        pg1=0 pg_extra=
        if [[ $sc == *_pg ]]; then
          pg1=$(pg_jiffies)
          sleep 1 # pg_stat_database is flushed by the backends about once a second
          read -r pgs1 pgc1 <<<"$(pg_counts "$PG_DB")"
          # Where PostgreSQL's time went (since the database was made), for the raw results.
          # Per statement: calls, ms, rows, shared blocks hit a call; then how
          # each table was read (sequential scans and rows they read, index scans).
          { psql_pg postgres "SELECT s.calls, round(s.total_exec_time::numeric, 1) AS ms, s.rows, round(s.shared_blks_hit::numeric / s.calls, 1) AS blks_per_call, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 160) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '$PG_DB' ORDER BY s.total_exec_time DESC LIMIT 12"
            psql_pg "$PG_DB" "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE seq_scan + COALESCE(idx_scan, 0) > 0 ORDER BY relname"
            psql_pg "$PG_DB" "SELECT relname, indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE idx_scan > 0 ORDER BY relname, indexrelname"
          } >"$OUT/$sc.$srv.$rep.pg-statements.txt" || true
          pg_extra=",\"pg_cpu_s\":$(awk -v j=$((pg1 - pg0)) -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", j/hz}'),\"pg_statements\":$((pgs1 - pgs0)),\"pg_commits\":$((pgc1 - pgc0))"
        fi
        stop_attack "$OUT/$sc.$srv.$rep.attack.txt"
        hwm=$(status_kb "$SERVER_PID" VmHWM)
        stop_server
        # The attack's own CPU, and PostgreSQL's, are part of the scenario, not other load.
        read -r server_cpu foreign <<<"$(awk -v b=$((b1 - b0 - (a1 - a0) - (pg1 - pg0))) -v sv=$((s1 - s0)) -v hz="$CLK_TCK" \
          -v wk="$WRK_CPU_S" -v w0="$w0" -v w1="$w1" -v nc="$NCPU" \
          'BEGIN{ wall=w1-w0; printf "%.2f %.1f", sv/hz, (b/hz - sv/hz - wk) * 100 / (nc*wall) }')"
        res=$(sed -n 's/^BENCHJSON //p' "$OUT/$sc.$srv.$rep.txt")
        [[ -n $res ]] || { echo "no result from wrk, see $OUT/$sc.$srv.$rep.txt" >&2; exit 1; }
        rec="{\"scenario\":\"$sc\",\"server\":\"$srv\",\"rep\":$rep,\"attempt\":$attempt,\"idle_rss_kb\":$idle_rss,\"prepared_rss_kb\":$prepared_rss,\"hwm_kb\":$hwm,\"pre_busy_pct\":$PRE_BUSY,\"server_cpu_s\":$server_cpu,\"wrk_cpu_s\":$WRK_CPU_S,\"foreign_cpu_pct\":$foreign,\"attack\":\"$ATTACK_RESULT\"$pg_extra,\"wrk\":$res}"
        if awk -v f="$foreign" -v m="$MAX_FOREIGN" 'BEGIN{exit !(f > m)}'; then
          if (( attempt <= RETRIES )); then
            echo "$rec" >>"$OUT/rejected.jsonl"
            echo "   $sc $srv rep $rep: foreign CPU ${foreign}% > ${MAX_FOREIGN}%, redoing" >&2
            continue
          fi
          rec="${rec%\}},\"contaminated\":true}"
        fi
        echo "$rec" >>"$JSONL"
        LAST_RPS[$sc.$srv]=$(jf rps "$res" | cut -d. -f1)
        break
      done
      printf '[%d/%d] rep %d %-18s %-14s %9.0f req/s  p50 %6d us  p99 %6d us  errors %d  server %5.2f cpu-s  foreign %5.1f%%\n' \
        "$n" "$total" "$rep" "$sc" "$srv" "$(jf rps "$res")" "$(jf p50_us "$res")" "$(jf p99_us "$res")" \
        "$(( $(status_errors "$sc" "$res") + $(jf err_connect "$res") + $(jf err_read "$res") + $(jf err_write "$res") + $(jf err_timeout "$res") ))" \
        "$server_cpu" "$foreign"
    done
  done
done

MICRO_MD=
if [[ $MICRO == 1 ]]; then
  # Pinned to the server's core, like the server under load: unpinned, every
  # SQLite statement (sqlx runs each connection on a thread of its own) pays a
  # wake-up of the other vCPU, which doubles or triples the store numbers.
  echo "== cargo bench -p grantbox-bench (pinned to core $SERVER_CPU)"
  if (cd "$ROOT" && cargo bench -q -p grantbox-bench --no-run \
      && BENCH_RESULTS=$OUT/micro.md $(pin "$SERVER_CPU") cargo bench -q -p grantbox-bench) 2>&1 | tee "$OUT/micro.txt"; then
    MICRO_MD=$OUT/micro.md
  else
    echo "cargo bench failed, see $OUT/micro.txt; the load results follow" >&2
  fi
fi

python3 "$BENCH_DIR/summarize.py" "$OUT" "${RESULTS:-$BENCH_DIR/results/$STAMP}" ${MICRO_MD:+--micro "$MICRO_MD"}
echo "raw results: $OUT"
