#!/usr/bin/env bash
# Instruction profile of one token request, under callgrind.
#
#   bench/profile.sh                    # client credentials, 2000 requests after 200 warm-up
#   SCENARIO=introspect bench/profile.sh
#   SCENARIO=refresh bench/profile.sh   # a chain of refreshes, each rotating the last one's token
#   SCENARIO=authorization_code bench/profile.sh   # codes seeded by seed-codes, redeemed with PKCE
#   SCENARIO=code_flow N=300 bench/profile.sh      # a signed-in user's whole flow (authorize, consent
#                                                  # page, decision, token) is one unit
#
# Callgrind counts instructions, not seconds, so the result repeats whatever
# else the machine is doing: the number to compare before and after a change.
# It starts target/release/grantbox under valgrind with collection off, warms up,
# switches collection on for exactly N sequential keep-alive requests, and prints
# instructions per request and the functions that account for them (inclusive).
# Waiting (locks, SQLite's busy handler, the network) costs no instructions and is
# invisible here: measure that with run.sh.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
GRANTBOX=${GRANTBOX_BIN:-$TARGET/release/grantbox}
SCENARIO=${SCENARIO:-client_credentials}
N=${N:-2000}
WARM=${WARM:-200}
PORT=${PORT:-38190}
OUT=${OUT:-$TARGET/bench-profile}
SECRET=bench-secret-bench-secret-bench-secret-0001

command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
[[ -n ${GRANTBOX_BIN:-} ]] || cargo build --release -p grantbox --manifest-path "$ROOT/Cargo.toml"

rm -rf "$OUT" && mkdir -p "$OUT"
DB="sqlite://$OUT/grantbox.db"
gb() { "$GRANTBOX" --db "$DB" "$@" >/dev/null; }
gb client add bench-client --grant-type client_credentials --grant-type password --grant-type refresh_token \
  --scope read --scope write --secret "$SECRET"
# The user who gets the first refresh token or signs in to the flow (an argon2 hash: only where needed).
if [[ $SCENARIO == refresh || $SCENARIO == code_flow ]]; then
  printf '%s' "$SECRET" | gb user add alice --password-stdin
fi
REDIRECT_URI=http://127.0.0.1:9/callback
VERIFIER=bench-code-verifier-of-pkce-rfc7636-at-least-43-chars
if [[ $SCENARIO == code_flow ]]; then
  gb client add bench-flow --grant-type authorization_code --redirect-uri "$REDIRECT_URI" \
    --scope read --scope write --secret "$SECRET"
fi
if [[ $SCENARIO == authorization_code ]]; then
  # One code a request, seeded through the store as run.sh does.
  gb client add bench-code --grant-type authorization_code --redirect-uri "$REDIRECT_URI" \
    --scope read --scope write --secret "$SECRET"
  cargo build --release -q -p grantbox-bench --bin seed-codes --manifest-path "$ROOT/Cargo.toml"
  "$TARGET/release/seed-codes" "$DB" bench-code "$REDIRECT_URI" "$VERIFIER" $(( N + WARM + 20 )) "$OUT/codes" >/dev/null
fi

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
  "$GRANTBOX" --db "$DB" serve --listen "127.0.0.1:$PORT" --cache-dir "$OUT/cache" >"$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT

python3 - "$PORT" "$SECRET" "$SCENARIO" "$N" "$WARM" "$PID" "$OUT/codes" "$REDIRECT_URI" "$VERIFIER" <<'PY'
import base64, hashlib, http.client, json, re, subprocess, sys, time, urllib.parse
port, secret, scenario, n, warm, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
codes_file, redirect_uri, verifier = sys.argv[7], sys.argv[8], sys.argv[9]
auth = "Basic " + base64.b64encode(f"bench-client:{secret}".encode()).decode()
headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
deadline = time.time() + 300
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
        c.request("GET", "/healthz"); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError:
        pass
    if time.time() > deadline: sys.exit("server did not start")
    time.sleep(0.5)
def token():
    c.request("POST", "/token", "grant_type=client_credentials&scope=read%20write", headers)
    r = c.getresponse(); body = r.read()
    assert r.status == 200, body
    return json.loads(body)["access_token"]
access = token()
if scenario == "refresh":
    # One password grant (an argon2 check) for the first refresh token; each
    # refresh then presents the token the previous one returned.
    c.request("POST", "/token", f"grant_type=password&username=alice&password={secret}&scope=read%20write", headers)
    r = c.getresponse(); body = r.read()
    assert r.status == 200, body
    refresh_token = json.loads(body)["refresh_token"]
    def one():
        global refresh_token
        c.request("POST", "/token", f"grant_type=refresh_token&refresh_token={refresh_token}", headers)
        r = c.getresponse(); data = r.read()
        assert r.status == 200, data
        refresh_token = json.loads(data)["refresh_token"]
elif scenario == "code_flow":
    # The flow of bench/src/code_flow.rs on one keep-alive connection: sign
    # in once (before counting), then GET /authorize with prompt=consent,
    # the consent page's hidden fields, POST /authorize/decision, POST /token.
    cookies = {}
    def send(method, path, body=None, extra=None):
        h = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if body is not None: h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(extra or {})
        c.request(method, path, body, h); r = c.getresponse(); data = r.read()
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                k, v = value.split(";", 1)[0].split("=", 1); cookies[k] = v
        return r, data.decode()
    def hidden(page, name):
        return re.search(f'name="{name}" value="([^"]*)"', page).group(1)
    r, page = send("GET", "/login")
    r, _ = send("POST", "/login", urllib.parse.urlencode({"username": "alice", "password": secret, "csrf_token": hidden(page, "csrf_token")}))
    assert r.status in (302, 303), r.status
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = "/authorize?" + urllib.parse.urlencode({"response_type": "code", "client_id": "bench-flow",
        "redirect_uri": redirect_uri, "scope": "read", "state": "bench", "prompt": "consent",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    flow_auth = "Basic " + base64.b64encode(f"bench-flow:{secret}".encode()).decode()
    def one():
        r, page = send("GET", authorize)
        assert r.status == 200, page
        r, _ = send("POST", "/authorize/decision", urllib.parse.urlencode({"transaction_id": hidden(page, "transaction_id"),
            "csrf_token": hidden(page, "csrf_token"), "allow": "1"}))
        location = r.getheader("Location") or ""
        assert location.startswith(redirect_uri), (r.status, location)
        code = urllib.parse.parse_qs(location.split("?", 1)[1])["code"][0]
        r, data = send("POST", "/token", urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
            "redirect_uri": redirect_uri, "code_verifier": verifier}), {"Authorization": flow_auth})
        assert r.status == 200, data
elif scenario == "authorization_code":
    codes = iter(open(codes_file).read().split())
    code_headers = dict(headers, Authorization="Basic " + base64.b64encode(f"bench-code:{secret}".encode()).decode())
    def one():
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": next(codes),
                                       "redirect_uri": redirect_uri, "code_verifier": verifier})
        c.request("POST", "/token", body, code_headers)
        r = c.getresponse(); data = r.read()
        assert r.status == 200, data
else:
    body = "grant_type=client_credentials&scope=read%20write" if scenario == "client_credentials" else f"token={access}"
    path = "/token" if scenario == "client_credentials" else "/introspect"
    def one():
        c.request("POST", path, body, headers); r = c.getresponse(); data = r.read()
        assert r.status == 200, data
for _ in range(warm): one()
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, stdout=subprocess.DEVNULL)
# The first instrumented calls re-translate code and can overrun a plugin's
# deadline (valgrind runs ~50x slower); they are not counted.
for _ in range(20):
    try: one()
    except AssertionError: pass
subprocess.run(["callgrind_control", "-d", pid], check=True, stdout=subprocess.DEVNULL)
for _ in range(n): one()
subprocess.run(["callgrind_control", "-d", pid], check=True, stdout=subprocess.DEVNULL)
PY

kill -INT $PID; wait $PID || true
trap - EXIT
# Dump 1 holds the uncounted first calls, dump 2 exactly the N requests.
PROFILE=$OUT/callgrind.out.2
TOTAL=$(callgrind_annotate "$PROFILE" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}' | head -1)
echo "scenario: $SCENARIO, $N requests"
echo "instructions per request: $((TOTAL / N))"
echo
echo "self instructions per request, by component:"
callgrind_annotate --auto=no --threshold=100 "$PROFILE" 2>/dev/null | awk -v N="$N" -f "$BENCH_DIR/profile-groups.awk" | sort -rn
echo
echo "top functions (self instructions per request):"
callgrind_annotate --auto=no --threshold=90 "$PROFILE" 2>/dev/null \
  | awk -v n="$N" '/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ { c=$1; gsub(",","",c); sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/,""); sub(/ \[.*/,""); sub(/.*\/(src|library)\//,""); if (++k <= 25) printf "%8d  %s\n", c/n, substr($0,1,140) }'
