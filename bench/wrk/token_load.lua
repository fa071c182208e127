-- wrk script for bench/run.sh: the load of one scenario, chosen by SCENARIO.
-- Based on ../shared/bench/wrk/client_credentials.lua (same request bytes for
-- client_credentials, same BENCHJSON line), with the credentials and tokens
-- taken from the environment so that Grantbox can use a secret of >= 32 chars.
--
--   SCENARIO=client_credentials  POST /token grant_type=client_credentials&scope=read%20write
--                                (static request, no response() hook: as fast as wrk goes)
--   SCENARIO=introspect          POST /introspect token=$TOKEN (one access token issued
--                                before the run; RFC 7662, client_secret_basic)
--   SCENARIO=refresh             POST /token grant_type=refresh_token&refresh_token=...
--                                with rotation: a pool of refresh tokens read from
--                                $REFRESH_FILE (one a line, at least one per connection);
--                                each request takes one, each 200 answer puts back the
--                                new one. Needs a response() hook, which slows wrk down;
--                                it runs on its own core and stays far from its limit.
--   SCENARIO=authorization_code  POST /token grant_type=authorization_code&code=...&redirect_uri=...
--                                &code_verifier=... (RFC 6749 §4.1.3, RFC 7636): each request
--                                redeems one of the codes in $CODE_FILE (seeded through the
--                                store by seed-codes, all with the PKCE challenge of
--                                $CODE_VERIFIER); a code is never sent twice.
--   SCENARIO=device_poll         POST /token grant_type=urn:ietf:params:oauth:grant-type:device_code
--                                &device_code=... (RFC 8628 §3.4): each request polls the next of
--                                the device codes in $DEVICE_FILE in turn (started before the run,
--                                never approved). Every answer is a 400 (authorization_pending or
--                                slow_down), which wrk counts as a status error; a response() hook
--                                counts the answers that are neither ("unexpected" in BENCHJSON) and
--                                the slow_down ones ("slow_down").
--
-- Env: CLIENT_ID, CLIENT_SECRET (client_secret_basic), TOKEN, REFRESH_FILE, CODE_FILE,
-- DEVICE_FILE, REDIRECT_URI, CODE_VERIFIER, WRK_THREADS.
-- Non-2xx answers and socket errors are counted by wrk and reported in BENCHJSON.

local scenario = os.getenv("SCENARIO") or "client_credentials"
local id = os.getenv("CLIENT_ID") or "bench-client"
local secret = os.getenv("CLIENT_SECRET") or "bench-secret"

-- minimal base64 (wrk's LuaJIT has no library for it)
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

-- Tokens are base64url or hex: nothing to escape but these, to be safe.
local function form_escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- The threads setup() saw, for done() to read their counters.
threads = {}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "Basic " .. b64(id .. ":" .. secret)

if scenario == "client_credentials" then
  wrk.path = "/token"
  wrk.body = "grant_type=client_credentials&scope=read%20write"
elseif scenario == "introspect" then
  local token = os.getenv("TOKEN") or error("SCENARIO=introspect needs TOKEN")
  wrk.path = "/introspect"
  wrk.body = "token=" .. form_escape(token)
elseif scenario == "authorization_code" then
  wrk.path = "/token"
  local file = os.getenv("CODE_FILE") or error("SCENARIO=authorization_code needs CODE_FILE")
  local prefix = "grant_type=authorization_code&redirect_uri=" ..
    form_escape(os.getenv("REDIRECT_URI") or error("needs REDIRECT_URI")) ..
    "&code_verifier=" .. form_escape(os.getenv("CODE_VERIFIER") or error("needs CODE_VERIFIER")) .. "&code="

  -- Each thread redeems every n-th code, so no code is sent twice.
  local counter = 0
  function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
  end

  local codes, next_code = {}, 1
  function init(args)
    local n, i = tonumber(os.getenv("WRK_THREADS") or "1"), 0
    for line in io.lines(file) do
      if line ~= "" then
        if i % n == index then codes[#codes + 1] = line end
        i = i + 1
      end
    end
  end

  function request()
    -- Past the last seeded code the request fails visibly (400) instead of
    -- replaying a code (which would revoke its tokens and count as success).
    local code = codes[next_code] or "codes-exhausted"
    next_code = next_code + 1
    return wrk.format(nil, nil, nil, prefix .. code)
  end
elseif scenario == "refresh" then
  wrk.path = "/token"
  local file = os.getenv("REFRESH_FILE") or error("SCENARIO=refresh needs REFRESH_FILE")

  -- Each wrk thread (WRK_THREADS of them, as given to -t) gets every n-th
  -- token so that no two threads share one (a rotated token presented
  -- again revokes its whole family).
  local counter = 0
  function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
  end

  local pool = {}
  function init(args)
    local n, i = tonumber(os.getenv("WRK_THREADS") or "1"), 0
    for line in io.lines(file) do
      if line ~= "" then
        if i % n == index then pool[#pool + 1] = line end
        i = i + 1
      end
    end
  end

  function request()
    -- An empty pool only follows failed refreshes; the request then fails
    -- visibly (400) instead of reusing a token.
    local token = table.remove(pool) or "pool-exhausted"
    return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. form_escape(token))
  end

  function response(status, headers, body)
    if status == 200 then
      local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
      if token then pool[#pool + 1] = token end
    end
  end
elseif scenario == "device_poll" then
  wrk.path = "/token"
  local file = os.getenv("DEVICE_FILE") or error("SCENARIO=device_poll needs DEVICE_FILE")
  local prefix = "grant_type=" .. form_escape("urn:ietf:params:oauth:grant-type:device_code") .. "&device_code="

  -- Each thread polls every n-th device code, round and round.
  local counter = 0
  function setup(thread)
    thread:set("index", counter)
    counter = counter + 1
    threads[#threads + 1] = thread
  end

  local devices, next_device = {}, 0
  unexpected, slow_down = 0, 0
  function init(args)
    local n, i = tonumber(os.getenv("WRK_THREADS") or "1"), 0
    for line in io.lines(file) do
      if line ~= "" then
        if i % n == index then devices[#devices + 1] = line end
        i = i + 1
      end
    end
    if #devices == 0 then error("no device codes in " .. file) end
  end

  function request()
    next_device = next_device % #devices + 1
    return wrk.format(nil, nil, nil, prefix .. devices[next_device])
  end

  function response(status, headers, body)
    if status ~= 400 then
      unexpected = unexpected + 1
    elseif body:find('"slow_down"', 1, true) then
      slow_down = slow_down + 1
    elseif not body:find('"authorization_pending"', 1, true) then
      unexpected = unexpected + 1
    end
  end
else
  error("unknown SCENARIO " .. scenario)
end

-- One machine-readable line for run.sh (latency in microseconds); device_poll
-- adds the counts its response() hook kept in each thread.
function done(summary, latency, requests)
  local e = summary.errors
  local extra = ""
  if scenario == "device_poll" then
    local unexpected, slow = 0, 0
    for _, thread in ipairs(threads) do
      unexpected = unexpected + thread:get("unexpected")
      slow = slow + thread:get("slow_down")
    end
    extra = string.format(",\"unexpected\":%d,\"slow_down\":%d", unexpected, slow)
  end
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"rps\":%.1f," ..
    "\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f," ..
    "\"err_connect\":%d,\"err_read\":%d,\"err_write\":%d,\"err_status\":%d,\"err_timeout\":%d%s}\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, extra))
end
