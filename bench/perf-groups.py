#!/usr/bin/env python3
"""Charges each sample of `perf script -F comm,tid,ip,sym,dso` to one
component and prints the markdown table of shares; used by perf.sh.

A sample is charged by its call stack, so that a system call counts for the
component that made it (SQLite's pwrite for SQLite, hyper's writev for the
network):

1. a sample with any frame in SQLite (its C functions, statically linked)
   or in sqlx's SQLite worker is "SQLite and its system calls";
2. a sample whose leaf has no symbol and no file is in the guest's compiled
   code, "wasmtime and the guest";
3. otherwise the innermost frame that matches one of PATTERNS, walking from
   the leaf towards the root, names the component (JIT code, which has no
   symbol, is the guest); a stack with no match is "other".
"""
import re
import sys
from collections import Counter

# SQLite's C functions: its API and the static functions of its layers.
SQLITE_C = re.compile(r"^(sqlite3|(wal|pager|btree|vdbe|unix|pcache|balance|moveTo|insertCell)[A-Z])")

SQLITE = "SQLite and its system calls"
GUEST = "wasmtime and the guest"
PATTERNS = [
    ("allocation, memcpy", ("mi_", "_mi_", "malloc", "__libc_free", "cfree", "memcpy", "memset", "memmove",
                            "realloc", "__rust_alloc", "__rust_dealloc")),
    ("network system calls (loopback send/receive, epoll)", ("sendmsg", "recvmsg", "tcp_", "sys_writev",
                                                             "sys_read", "sys_write", "epoll", "sock_", "ip_",
                                                             "__dev_queue", "net_rx", "skb")),
    (GUEST, ("wasmtime", "cranelift", "wasi")),
    ("tracing", ("tracing",)),
    ("hyper, axum, tower", ("hyper::", "httparse", "axum::", "tower::", "tower_http", "http::")),
    ("hashing, base64, random", ("sha2", "base64", "rand", "getrandom", "subtle", "argon2")),
    ("serde", ("serde",)),
    ("tokio, thread hand-offs", ("tokio", "parking_lot", "futex", "schedule", "__switch_to", "sched_",
                                 "crossbeam", "flume")),
    ("grantbox's own code", ("grantbox",)),
]
OTHER = "other (std, futures, libc, kernel)"


def component(stack):
    if any(SQLITE_C.match(s) or "sqlx_sqlite" in s for s, _ in stack):
        return SQLITE
    # Compiled guest code has no symbol, and perf cannot unwind through it.
    if stack and stack[0][0] == "[unknown]" and stack[0][1] in ("[unknown]", "//anon", ""):
        return GUEST
    for sym, _ in stack:
        for name, needles in PATTERNS:
            if any(n in sym for n in needles):
                return name
    return OTHER


def samples(path):
    stack, header = [], None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if header is not None:
                    yield stack
                stack, header = [], None
            elif not line.startswith((" ", "\t")):
                header = line
            else:
                parts = line.strip().split(" ", 1)
                rest = parts[1] if len(parts) > 1 else ""
                # "<sym>+0x.. (<dso>)"
                dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else ""
                sym = rest[:rest.rfind(" (")] if " (" in rest else rest
                sym = sym.rsplit("+0x", 1)[0]
                stack.append((sym, dso))
    if header is not None:
        yield stack


def main():
    path, cpu_us = sys.argv[1], float(sys.argv[2])
    counts, total = Counter(), 0
    for st in samples(path):
        total += 1
        counts[component(st)] += 1
    if not total:
        sys.exit("perf-groups.py: no samples")
    print("| component | share of the server's CPU | µs per request |")
    print("|---|---:|---:|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f} % | {cpu_us * n / total:.1f} |")
    print(f"| total ({total} samples) | 100 % | {cpu_us:.0f} |")


if __name__ == "__main__":
    main()
