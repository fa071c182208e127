#!/usr/bin/env python3
"""Summarize a bench/run.sh run: a Markdown table and an SVG bar chart.

    summarize.py OUT_DIR RESULT_PREFIX [--micro MICRO.md]

Reads OUT_DIR/runs.jsonl (one line per measured run) and OUT_DIR/env.txt,
writes RESULT_PREFIX.md and RESULT_PREFIX.svg, and prints the Markdown.
Standard library only.
"""

import json
import math
import statistics
import sys
from pathlib import Path

SCENARIOS = {
    "client_credentials": "client credentials: POST /token grant_type=client_credentials, client_secret_basic",
    "authorization_code": "authorization code redemption: POST /token grant_type=authorization_code with PKCE S256, one code a request",
    "cc_fixed_rate": "client credentials at a fixed rate (half of Grantbox's client-credentials req/s "
    "in the same repetition), latency corrected for coordinated omission",
    "code_flow": "the whole code flow of a signed-in user: GET /authorize -> consent -> decision -> "
    "code -> POST /token, a flow a request",
    "client_credentials_pg": "client credentials on PostgreSQL: the client_credentials load, Grantbox on "
    "a throwaway PostgreSQL cluster (durable commits) instead of SQLite",
    "refresh_pg": "refresh with rotation on PostgreSQL: the refresh load, Grantbox on PostgreSQL",
    "introspect": "introspection: POST /introspect token=<access token issued before the run> (RFC 7662)",
    "refresh": "refresh with rotation: POST /token grant_type=refresh_token, a new refresh token each time",
    "device_poll": "device polling: POST /token grant_type=urn:ietf:params:oauth:grant-type:device_code "
    "for device codes nobody approves (RFC 8628 §3.4), client_secret_basic",
    "params_attack": "client credentials beside 60 KB unauthenticated POST /authorize requests "
    "(distinct parameters or scope tokens), back to back",
    "slow_clients": "client credentials beside connections that never finish their request head (slowloris)",
    "jwt_es256": "client credentials with RFC 9068 JWT access tokens signed with ES256",
    "jwt_rs256": "client credentials with RFC 9068 JWT access tokens signed with RS256 (2048-bit)",
    "jwt_eddsa": "client credentials with RFC 9068 JWT access tokens signed with EdDSA (Ed25519)",
}
NOTES = {
    "authorization_code": "Grantbox's codes are seeded through its store by `seed-codes` (the same rows "
    "`codes.issue` writes, with a PKCE S256 challenge); each request redeems one: the single-use update, "
    "then the token insert with the replay check, each in a group commit shared with the requests in "
    "flight. oauth2orize seeds its codes in its in-memory map at start (`SEED_CODES`, no PKCE: it ignores "
    "the `code_verifier`) and deletes each one it redeems.",
    "cc_fixed_rate": "Open loop (`fixed-rate`, bench/src/fixed_rate.rs): request i is due at start + i/rate, "
    "whatever the server's pace; one that finds every connection still busy counts its latency from "
    "when it was due (wrk2's correction), one sent on time from when it went out. req/s is the rate "
    "achieved; p50/p99 are what a client at that rate sees.",
    "code_flow": "A request here is a whole flow of three HTTP requests, driven by `code-flow` "
    "(bench/src/code_flow.rs): CONNS virtual users, each signed in once before the warm-up with a "
    "cookie jar of its own. Grantbox: `GET /authorize` with `prompt=consent` and PKCE S256 renders "
    "the consent page (HTML, its hidden `transaction_id` and `csrf_token` read back), the decision "
    "claims the transaction in the store and issues the code, `POST /token` redeems it; every step "
    "durable. oauth2orize: its consent is a JSON document, its transaction lives in the session "
    "(in memory), no PKCE.",
    "introspect": "No anchor implements introspection: Grantbox alone, no ratio.",
    "device_poll": "Grantbox alone: the anchors' load scripts have no device flow. DEVICES device "
    "authorizations are started before the run; each request polls the next device code in turn "
    "and is answered 400 `authorization_pending`, or `slow_down` when the code comes round again "
    "within its interval (the same work: the bundled plugin reads the device record from its "
    "key-value store and writes it back). Errors count answers that are neither; CPU/req is the "
    "CPU per poll.",
    "params_attack": "Grantbox alone (issue 14 item 2): the client-credentials load of the first table, "
    "while `attack.py params` (ATTACK_CONNS connections, on the load generator's core) sends the "
    "review's worst case to /authorize. Compare req/s, p50 and p99 with the client-credentials "
    "row of the same run.",
    "slow_clients": "Grantbox alone (issue 14 item 4): the client-credentials load while `attack.py slow` "
    "holds SLOW_CONNS half-sent request heads open (a header line every 5 s; the server closes them "
    "after `[limits] header_read_timeout_seconds`, 60 s by default, and the attack opens new ones).",
    "refresh": "Anchors: oauth2orize only (it rotates). oidc-provider issues refresh tokens only "
    "through its interactive authorization-code flow and does not rotate them by default; "
    "the floors have no refresh grant. The wrk script needs a response() hook here to "
    "carry each new refresh token to the next request.",
}


def mib(kb):
    return kb / 1024.0


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_int(x):
    return f"{x:,.0f}"


def median(values):
    return statistics.median(values) if values else float("nan")


def errors(w):
    # device_poll's answers are all 400s; its wrk script counts the unexpected ones.
    status = w["unexpected"] if "unexpected" in w else w["err_status"]
    return status + sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))


def load(out_dir):
    runs = [json.loads(line) for line in (out_dir / "runs.jsonl").read_text().splitlines() if line.strip()]
    env = (out_dir / "env.txt").read_text().strip() if (out_dir / "env.txt").exists() else ""
    rejected = out_dir / "rejected.jsonl"
    redone = len(rejected.read_text().splitlines()) if rejected.exists() else 0
    return runs, env, redone


def scenario_rows(runs, scenario):
    """Per server, in run order: the runs of each rep and per-rep ratios."""
    mine = [r for r in runs if r["scenario"] == scenario]
    servers = list(dict.fromkeys(r["server"] for r in mine))
    by = {(r["server"], r["rep"]): r for r in mine}
    reps = sorted({r["rep"] for r in mine})
    rows = []
    for server in servers:
        runs_of = [by[(server, rep)] for rep in reps if (server, rep) in by]
        ratios = []
        for rep in reps:
            if ("grantbox", rep) in by and (server, rep) in by and server != "grantbox":
                ratios.append(by[("grantbox", rep)]["wrk"]["rps"] / by[(server, rep)]["wrk"]["rps"])
        rows.append(
            {
                "server": server,
                "runs": runs_of,
                "rps": [r["wrk"]["rps"] for r in runs_of],
                "ratios": ratios,
                "p50": median([r["wrk"]["p50_us"] for r in runs_of]),
                "p99": median([r["wrk"]["p99_us"] for r in runs_of]),
                "cpu_us": median(
                    [r["server_cpu_s"] * 1e6 / r["wrk"]["requests"] for r in runs_of if r["wrk"]["requests"]]
                ),
                "errors": sum(errors(r["wrk"]) for r in runs_of),
                "idle": median([mib(r["idle_rss_kb"]) for r in runs_of]),
                "peak": median([mib(r["hwm_kb"]) for r in runs_of]),
                "foreign": max(r["foreign_cpu_pct"] for r in runs_of),
                "flagged": any(r.get("contaminated") for r in runs_of),
            }
        )
    return rows


def postgres_lines(runs, scenario):
    """What a request costs on PostgreSQL, beside the SQLite run of the same rep."""
    sqlite = {r["rep"]: r for r in runs if r["scenario"] == scenario[: -len("_pg")] and r["server"] == "grantbox"}
    mine = [r for r in runs if r["scenario"] == scenario and r["server"] == "grantbox"]
    per = lambda r, key: r.get(key, 0) / r["wrk"]["requests"] if r["wrk"]["requests"] else float("nan")
    ratios = [r["wrk"]["rps"] / sqlite[r["rep"]]["wrk"]["rps"] for r in mine if r["rep"] in sqlite]
    text = (
        "PostgreSQL: "
        f"{median([per(r, 'pg_cpu_s') * 1e6 for r in mine]):.0f} µs of PostgreSQL CPU a request beside the server's; "
        f"{median([per(r, 'pg_statements') for r in mine]):.2f} statements and "
        f"{median([per(r, 'pg_commits') for r in mine]):.2f} commits a request (pg_stat_statements, pg_stat_database)"
    )
    if ratios:
        text += "; req/s ÷ SQLite's in the same rep: " + " · ".join(f"{x:.2f}" for x in ratios)
    return [text + ".", ""]


def markdown(runs, env, redone, micro):
    lines = ["# Grantbox vs the anchors: token endpoint under load", ""]
    lines += ["```", env, "```", ""]
    lines += [
        "Server pinned to one core, wrk to the other, same wrk load for every server; "
        "req/s per repetition in run order; **Grantbox ÷ server** is the ratio of req/s "
        "within the same repetition (> 1: Grantbox is faster). p50/p99 and RSS are medians "
        "over repetitions; CPU/req = server CPU time / requests; idle RSS 2 s after start, "
        "peak RSS = VmHWM after the run.",
        "",
    ]
    headline = []
    for scenario, title in SCENARIOS.items():
        rows = scenario_rows(runs, scenario)
        if not rows:
            continue
        lines += [f"## {title}", ""]
        lines += [
            "| server | req/s (each rep) | median req/s | Grantbox ÷ server (each rep) | p50 | p99 | CPU/req | errors | idle RSS | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            ratios = " · ".join(f"{x:.2f}" for x in row["ratios"]) if row["ratios"] else "—"
            name = f"**{row['server']}**" if row["server"] == "grantbox" else row["server"]
            flag = " ⚠" if row["flagged"] else ""
            lines.append(
                f"| {name}{flag} | {' · '.join(fmt_int(x) for x in row['rps'])} | {fmt_int(median(row['rps']))} "
                f"| {ratios} | {fmt_us(row['p50'])} | {fmt_us(row['p99'])} | {row['cpu_us']:.0f} µs "
                f"| {row['errors']} | {row['idle']:.1f} MiB | {row['peak']:.1f} MiB |"
            )
            if row["ratios"] and scenario == "client_credentials":
                headline.append(f"{median(row['ratios']):.2f}× {row['server']}")
        lines.append("")
        if scenario in NOTES:
            lines += [NOTES[scenario], ""]
        attacks = [r["runs"][i].get("attack") for r in rows for i in range(len(r["runs"]))]
        attacks = [a for a in attacks if a and a != "none"]
        if attacks:
            lines += ["Attack, each rep: " + " · ".join(attacks) + ".", ""]
        if scenario.endswith("_pg"):
            lines += postgres_lines(runs, scenario)
        if scenario == "refresh":
            prepared = [
                f"{row['server']} {median([mib(r.get('prepared_rss_kb', 0)) for r in row['runs']]):.1f} MiB"
                for row in rows
            ]
            lines += [
                "The refresh tokens are seeded with password grants before the warm-up "
                "(Grantbox checks an argon2 hash each time), and that is where Grantbox's peak RSS "
                "comes from: RSS after seeding, before any refresh: " + ", ".join(prepared) + ".",
                "",
            ]
    if headline:
        lines.insert(
            2,
            "Headline (client credentials, median of the per-rep ratios): Grantbox = "
            + ", ".join(headline)
            + ".\n",
        )
    flagged = any(r.get("contaminated") for r in runs)
    lines.append(
        f"Runs redone because other load showed up during them: {redone}."
        + (" ⚠ = kept although other load exceeded the limit in every retry." if flagged else "")
    )
    if micro:
        lines += [
            "",
            "## Micro-benchmarks (`cargo bench -p grantbox-bench`, medians)",
            "",
            "Pinned to the server's core (`taskset -c SERVER_CPU`), like the server under load.",
            "",
            micro.strip(),
        ]
    return "\n".join(lines) + "\n"


def svg(runs):
    """Horizontal bars of median req/s per server, one panel per scenario, log scale."""
    panels = [(s, scenario_rows(runs, s)) for s in SCENARIOS if scenario_rows(runs, s)]
    width, left, right, bar_h, gap, head = 860, 150, 230, 22, 6, 34
    all_rps = [median(r["rps"]) for _, rows in panels for r in rows]
    lo = 10 ** math.floor(math.log10(max(min(all_rps), 1)))
    hi = 10 ** math.ceil(math.log10(max(all_rps)))
    plot_w = width - left - right

    def x(v):
        return left + plot_w * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    height = 40 + sum(head + len(rows) * (bar_h + gap) + 16 for _, rows in panels) + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="12" y="24" font-size="16" font-weight="bold">Token endpoint, requests/s '
        "(median over reps; server on 1 core; log scale)</text>",
    ]
    y = 40
    for scenario, rows in panels:
        out.append(f'<text x="12" y="{y + 20}" font-weight="bold">{scenario}</text>')
        y += head
        top = y
        for row in rows:
            v = median(row["rps"])
            color = "#d9534f" if row["server"] == "grantbox" else "#5b8dd6"
            out.append(f'<text x="{left - 8}" y="{y + bar_h - 6}" text-anchor="end">{row["server"]}</text>')
            out.append(f'<rect x="{left}" y="{y}" width="{x(v) - left:.1f}" height="{bar_h}" fill="{color}"/>')
            label = fmt_int(v)
            if row["ratios"]:
                label += f"  (Grantbox ÷ this: {median(row['ratios']):.2f})"
            out.append(f'<text x="{x(v) + 6:.1f}" y="{y + bar_h - 6}">{label}</text>')
            y += bar_h + gap
        decade = lo
        while decade <= hi:
            gx = x(decade)
            out.append(f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{y}" stroke="#999" stroke-dasharray="2,3"/>')
            out.append(f'<text x="{gx:.1f}" y="{y + 12}" text-anchor="middle" font-size="11" fill="#555">{fmt_int(decade)}</text>')
            decade *= 10
        y += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, prefix = Path(argv[1]), Path(argv[2])
    micro = None
    if "--micro" in argv:
        path = Path(argv[argv.index("--micro") + 1])
        micro = path.read_text() if path.exists() else None
    runs, env, redone = load(out_dir)
    if not runs:
        print("no runs", file=sys.stderr)
        return 1
    text = markdown(runs, env, redone, micro)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".md").write_text(text)
    prefix.with_suffix(".svg").write_text(svg(runs))
    print(text)
    print(f"written: {prefix.with_suffix('.md')} and {prefix.with_suffix('.svg')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
