#!/usr/bin/env bash
# Starts N grantbox instances (default 3) on ports 8081.. (admin endpoints on
# 8181..) sharing the PostgreSQL database $GRANTBOX_DB, then nginx on
# 127.0.0.1:8080 in front.
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"
: "${GRANTBOX_DB:?set GRANTBOX_DB=postgres://user@host:5432/grantbox}"
# Seals the signing keys; every instance needs the same one.
: "${GRANTBOX_KEY_ENCRYPTION_KEY:?set GRANTBOX_KEY_ENCRYPTION_KEY=\$(head -c32 /dev/urandom | basenc --base64url), the same for every instance}"
export GRANTBOX_KEY_ENCRYPTION_KEY
N=${N:-3}
GRANTBOX=${GRANTBOX:-grantbox}
ISSUER=${ISSUER:-http://127.0.0.1:8080}
mkdir -p tmp
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for i in $(seq 1 "$N"); do
    "$GRANTBOX" --config grantbox.toml serve --listen "127.0.0.1:808$i" --db "$GRANTBOX_DB" --issuer "$ISSUER" \
        --admin-listen "127.0.0.1:818$i" --cache-dir "cache-$i" &
    pids+=($!)
    # The first instance runs the migrations; the others find them applied.
    if [ "$i" = 1 ]; then
        sleep 2
    fi
done
nginx -p "$PWD" -c nginx.conf &
pids+=($!)
wait
