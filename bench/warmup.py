#!/usr/bin/env python3
"""Warm a server up with the scenario's request, ending without a request in flight.

    warmup.py SCENARIO PORT SECONDS CONNECTIONS [REFRESH_FILE | CODE_FILE | DEVICE_FILE]

Env: CLIENT_ID, CLIENT_SECRET (client_secret_basic), TOKEN (introspect),
REDIRECT_URI and CODE_VERIFIER (authorization_code).

wrk stops with a request in flight on every connection; the server sees those
clients go away mid-request. Grantbox's SQLite store did not survive that (a
request cancelled while it was beginning a write transaction left a pooled
connection holding the write lock, and every later write failed with 503; see
bench/README.md), which turned the measured run that followed a wrk warm-up into
errors. Each connection here finishes its last request before it stops, so the
warm-up leaves nothing half done; the measured run is still wrk's.

One keep-alive connection per thread, standard library only. For refresh, each
thread takes one token from REFRESH_FILE and follows the rotation chain.
Prints one line: requests, non-2xx, errors.
"""

import base64
import http.client
import json
import os
import sys
import threading
import time


def main(argv):
    scenario, port, seconds, connections = argv[1], int(argv[2]), float(argv[3]), int(argv[4])
    refresh_file = argv[5] if len(argv) > 5 else None
    credentials = f"{os.environ['CLIENT_ID']}:{os.environ['CLIENT_SECRET']}".encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "Authorization": "Basic " + base64.b64encode(credentials).decode(),
    }
    if scenario == "client_credentials":
        path, body = "/token", "grant_type=client_credentials&scope=read%20write"
    elif scenario == "introspect":
        path, body = "/introspect", "token=" + os.environ["TOKEN"]
    elif scenario == "refresh":
        path, body = "/token", None
        tokens = [line.strip() for line in open(refresh_file) if line.strip()]
        if len(tokens) < connections:
            print(f"warmup: {len(tokens)} refresh tokens for {connections} connections", file=sys.stderr)
            return 1
    elif scenario == "device_poll":
        # Every answer is a 400 (authorization_pending or slow_down): the
        # non-2xx count is the request count here.
        path, body = "/token", None
        devices = [line.strip() for line in open(refresh_file) if line.strip()]
        device_index = [0]
        device_body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code="
    elif scenario == "authorization_code":
        path, body = "/token", None
        codes = iter([line.strip() for line in open(refresh_file) if line.strip()])
        code_body = "grant_type=authorization_code&redirect_uri={}&code_verifier={}&code=".format(
            os.environ["REDIRECT_URI"].replace(":", "%3A").replace("/", "%2F"), os.environ["CODE_VERIFIER"]
        )
    else:
        print(f"warmup: unknown scenario {scenario}", file=sys.stderr)
        return 2

    deadline = time.monotonic() + seconds
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    lock = threading.Lock()

    def worker(index):
        done = non_2xx = errors = 0
        refresh = tokens[index] if scenario == "refresh" else None
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            payload = body if refresh is None else "grant_type=refresh_token&refresh_token=" + refresh
            if scenario == "authorization_code":
                with lock:
                    code = next(codes, None)
                if code is None:
                    break  # every seeded code is used
                payload = code_body + code
            if scenario == "device_poll":
                with lock:
                    device = devices[device_index[0] % len(devices)]
                    device_index[0] += 1
                payload = device_body + device
            try:
                connection.request("POST", path, payload, headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            done += 1
            if not 200 <= response.status < 300:
                non_2xx += 1
                if refresh is not None:
                    break  # the chain is broken: no token to go on with
            elif refresh is not None:
                refresh = json.loads(data)["refresh_token"]
        connection.close()
        with lock:
            counts["requests"] += done
            counts["non_2xx"] += non_2xx
            counts["errors"] += errors

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"warmup {scenario}: {counts['requests']} requests, {counts['non_2xx']} non-2xx, {counts['errors']} errors")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
