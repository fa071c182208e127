#!/usr/bin/env python3
"""The attack beside a measured load (bench/run.sh, issue 14 items 2 and 4).

    attack.py params PORT SECONDS CONNECTIONS   # 60 KB unauthenticated POST /authorize, back to back
    attack.py slow PORT SECONDS CONNECTIONS     # half-sent request heads (slowloris)

params: each connection sends, one after the other, the worst case of the
review: a 60 KB form to /authorize for client ATTACK_CLIENT_ID with
REDIRECT_URI, then thousands of distinct parameters (no repeat, so a quadratic
repeat search reads them all); every other request instead carries 8,000
distinct scope tokens (a quadratic de-duplication). The server answers with
an error; how soon is what the attack costs it.

slow: opens CONNECTIONS sockets, each sending a request head a few bytes at a
time (one header line every 5 s, never the blank line that ends the head), and
opens a new one whenever the server closes one.

Prints "READY" once the attack runs (all slow sockets open); stops after SECONDS
or at SIGTERM/SIGINT and prints one line: attack requests answered (params) or
connections the server closed (slow). Standard library only.
"""

import os
import resource
import signal
import socket
import sys
import threading
import time

STOP = threading.Event()


def running(deadline):
    return not STOP.is_set() and time.monotonic() < deadline


def params_bodies():
    client = os.environ.get("ATTACK_CLIENT_ID", "bench-web")
    redirect = os.environ.get("REDIRECT_URI", "https://client.example/cb")
    head = f"client_id={client}&redirect_uri={redirect}&response_type=code"
    parts, i = [head], 0
    while sum(len(p) + 1 for p in parts) < 60_000:
        parts.append(f"p{i}=")
        i += 1
    many_parameters = "&".join(parts).encode()
    many_scopes = (head + "&scope=" + "+".join(f"s{i}" for i in range(8_000))).encode()
    return many_parameters, many_scopes


def params(port, seconds, connections):
    bodies = params_bodies()
    deadline = time.monotonic() + seconds
    answered = [0] * connections

    def worker(n):
        sock = None
        k = n
        while running(deadline):
            body = bodies[k % 2]
            k += 1
            request = (
                f"POST /authorize HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                sock.sendall(request)
                while sock.recv(65536):
                    pass
                answered[n] += 1
            except OSError:
                time.sleep(0.05)
            finally:
                if sock is not None:
                    sock.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(connections)]
    for t in threads:
        t.start()
    print("READY", flush=True)
    while any(t.is_alive() for t in threads):
        STOP.wait(0.2)
    print(f"attack requests answered: {sum(answered)}", flush=True)


def slow(port, seconds, connections):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, connections + 256) if hard != resource.RLIM_INFINITY else connections + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()

    def open_one():
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setblocking(False)
        sock.send(head)
        return sock

    socks = []
    for _ in range(connections):
        try:
            socks.append(open_one())
        except OSError:
            break
    print("READY", flush=True)
    closed = 0
    deadline = time.monotonic() + seconds
    line = 0
    while running(deadline):
        STOP.wait(min(5, max(0, deadline - time.monotonic())))
        if STOP.is_set():
            break
        line += 1
        alive = []
        for sock in socks:
            try:
                # A closed connection reads as EOF (or an error): replace it.
                try:
                    if sock.recv(1024) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
                sock.send(f"X-Slow-{line}: 1\r\n".encode())
                alive.append(sock)
            except OSError:
                sock.close()
                closed += 1
                try:
                    alive.append(open_one())
                except OSError:
                    pass
        socks = alive
    for sock in socks:
        sock.close()
    print(f"slow connections closed by the server: {closed}", flush=True)


def main(argv):
    if len(argv) != 5 or argv[1] not in ("params", "slow"):
        print(__doc__, file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    mode, port, seconds, connections = argv[1], int(argv[2]), float(argv[3]), int(argv[4])
    (params if mode == "params" else slow)(port, seconds, connections)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
