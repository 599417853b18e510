"""`make bench`: our service and node oidc-provider side by side, in alternating rounds (issue 17).

A shared, noisy machine moves absolute figures from minute to minute; a ratio taken within one
round does not move with it. Each round measures every endpoint on both servers back to back
(ours first in odd rounds, the peer first in even ones), with the same wrk scripts, connections
and duration; the report gives each round's ratio ours/peer (req/s) and p99 factor, and their
medians over the rounds. Our Django hello view is measured at the start of every round as a
second reference. Results: var/bench/results.json and a table on stdout.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import run
from .peer import PATHS as PEER_PATHS
from .peer import Peer
from .peer import version as peer_version
from .run import FORM, Config, Scenario

# Medians of the same-run ratio ours/peer each endpoint should reach (issue 17).
TARGETS = {
    "discovery": 1.0,
    "jwks": 1.0,
    "introspect_warm": 1.0,
    "client_credentials": 0.7,
    "authorization_code": 0.5,
    "refresh": 0.5,
    "register": 0.5,
    "revoke": 0.5,
}
P99_FACTOR = 2.0  # p99 at 50 connections ≤ 2 × the peer's, every endpoint
MIXED = Scenario("mixed", "mixed_once.lua", "{1}", "{2}", expect=0, once=True,
                 headers={"Authorization": "{3}", "Content-Type": "{4}"}, body="{5}")
COMPARED = ["discovery", "jwks", "client_credentials", "authorization_code", "refresh", "introspect_warm",
            "introspect_cold", "revoke", "register", "mixed"]
MIX_BLOCK = 20  # per 20 requests of the mixed profile: 16 warm introspections, 3 refreshes, 1 registration


def scenario(name: str) -> Scenario:
    return MIXED if name == "mixed" else run.SCENARIOS[name]


@dataclass
class Side:
    """One server under test: where it listens, how it names endpoints, how it makes values."""

    name: str
    port: int
    base: str
    paths: dict[str, str]
    make_values: Callable[[str, int], list[list[str]]]  # (scenario, pool size) → value lines
    pids: Callable[[], list[int]] = list  # the server's processes, for CPU time per request
    rates: dict[str, float] = field(default_factory=dict)  # last measured req/s, sizes the next pool

    def path(self, name: str) -> str:
        return self.paths.get(name) or scenario(name).path

    def pool(self, name: str, duration: int) -> int:
        """One-shot values for one run: 2.5 × what the last run spent (wrk threads split them evenly
        but do not run evenly), and never fewer than discovery, the fastest endpoint, would spend in
        this round: on a busy machine the last run may have been several times slower."""
        discovery = max(self.rates.get("discovery", 0), 3_000)  # itself measured on a busy machine
        floor = discovery * (1.0 if name in self.rates else 2.5)
        return int(max(self.rates.get(name, 0) * 2.5, floor) * duration) + 200


def mixed_lines(side: Side, n: int, introspect: list[list[str]], refresh: list[list[str]]) -> list[list[str]]:
    """`n` whole requests in blocks of MIX_BLOCK: warm introspections, refreshes, one registration."""
    register = run.SCENARIOS["register"].body
    lines: list[list[str]] = []
    spent = 0
    while len(lines) < n:
        for i in range(MIX_BLOCK):
            if i == MIX_BLOCK - 1:
                lines.append(["POST", side.base + side.path("register"), "", "application/json", register])
            elif i % 6 == 5:
                token, client_id = refresh[spent]
                spent += 1
                lines.append(["POST", side.base + side.path("refresh"), "", FORM,
                              f"grant_type=refresh_token&refresh_token={token}&client_id={client_id}"])
            else:
                auth, token = introspect[(len(lines) + i) % len(introspect)]
                lines.append(["POST", side.base + side.path("introspect_warm"), auth, FORM, f"token={token}"])
    return lines


def refreshes_for(n: int) -> int:
    return n * 3 // MIX_BLOCK + MIX_BLOCK


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (/proc/<pid>/stat), their threads included."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def ours(cfg: Config, world, server: run.Server) -> Side:
    from . import seed

    warm = seed.access_tokens(world, 200, world.cc_clients[0])

    def make(name: str, pool: int) -> list[list[str]]:
        if name == "mixed":
            introspect = [[f"Bearer {world.introspect_secret}", t] for t in warm]
            refresh = [[t, world.public_client.client_id] for t in seed.refresh_tokens(world, refreshes_for(pool))]
            seed.analyze()
            return mixed_lines(side, pool, introspect, refresh)
        return run.values_for(run.SCENARIOS[name], world, pool, warm)

    side = Side("ours", cfg.port, world.base_path, {}, make, pids=lambda: [server.proc.pid, *server.worker_pids()])
    return side


def peer_side(cfg: Config, peer: Peer) -> Side:
    basics = peer.clients()
    warm = peer.seed("access", 200)

    def make(name: str, pool: int) -> list[list[str]]:
        if name == "client_credentials":
            return [[b] for cid, b in basics.items() if cid.startswith("bench-service-")]
        if name == "authorization_code":
            return peer.seed("codes", pool)
        if name == "refresh":
            return peer.seed("refresh", pool)
        if name == "introspect_warm":
            return warm
        if name == "introspect_cold":
            return peer.seed("access", pool)
        if name == "revoke":
            return peer.seed("revocable", pool)
        if name == "mixed":
            return mixed_lines(side, pool, warm, peer.seed("refresh", refreshes_for(pool)))
        return []

    side = Side("peer", peer.port, "", PEER_PATHS, make, pids=lambda: [peer.proc.pid])
    return side


# --- one measurement ------------------------------------------------------------------------------


def measure(cfg: Config, side: Side, name: str) -> dict:
    """Seed, probe once, warm up (reusable values), run wrk; the summary, or {"skipped": why}."""
    sc = scenario(name)
    pool = side.pool(name, cfg.duration)
    lines = side.make_values(name, pool)
    values_path = None
    probe_fields: list[str] = []
    if lines:
        probe_fields, lines = (lines[0], lines[1:]) if sc.once else (lines[0], lines)
        values_path = run.OUT_DIR / "values" / f"{side.name}-{name}.tsv"
        values_path.parent.mkdir(parents=True, exist_ok=True)
        from . import seed

        seed.write_values(values_path, lines)
    base = "" if name == "mixed" else side.base
    ok, reason = probe(side, sc, base + sc.fill(side.path(name), probe_fields), probe_fields)
    if not ok:
        return {"skipped": reason}
    if not sc.once and cfg.warmup:
        wrk(cfg, side, name, base, values_path, cfg.warmup)
    pids = side.pids()
    cpu_before = cpu_seconds(pids)
    result = wrk(cfg, side, name, base, values_path, cfg.duration)
    # Server CPU per answer: what a busy machine changes least (it slows a run, not its work).
    result["cpu_us_per_request"] = round((cpu_seconds(pids) - cpu_before) / max(result["requests"], 1) * 1e6)
    result["seeded_values"] = len(lines)
    if result["valid"]:
        side.rates[name] = result["rps"]
    return result


def probe(side: Side, sc: Scenario, path: str, fields: list[str]) -> tuple[bool, str]:
    headers = {k: sc.fill(v, fields) for k, v in sc.headers.items()}
    status, body, _ = run.request(side.port, sc.fill(sc.method, fields), path,
                                  {k: v for k, v in headers.items() if v}, sc.fill(sc.body, fields))
    good = (200 <= status < 300) if sc.expect == 0 else status == sc.expect
    if good and (not sc.expect_body or re.search(sc.expect_body, body)):
        return True, "ok"
    return False, f"probe of {path} answered {status}: {body[:200]}"


def wrk(cfg: Config, side: Side, name: str, base: str, values: Path | None, duration: int) -> dict:
    sc = scenario(name)
    cmd = ["wrk", f"-t{cfg.threads}", f"-c{cfg.connections}", f"-d{duration}s", "--timeout", "10s",
           "-s", str(run.LUA_DIR / sc.script), f"http://127.0.0.1:{side.port}", "--",
           f"base={base}", f"path={'' if name == 'mixed' else side.path(name)}", f"values={values or ''}",
           f"threads={cfg.threads}"]
    proc = subprocess.run(cmd, cwd=run.ROOT, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return run.summarize(run.parse_wrk_output(proc.stdout), sc.expect)


# --- rounds ----------------------------------------------------------------------------------------


def rounds(cfg: Config, sides: list[Side], names: list[str]) -> list[dict]:
    out = []
    for index in range(cfg.rounds):
        order = sides if index % 2 == 0 else sides[::-1]
        hello = run.run_wrk(cfg, run.SCENARIOS["hello"], "", None, cfg.duration)
        print(f"== round {index + 1}/{cfg.rounds} (hello view: {hello['rps']:.0f} req/s)", flush=True)
        result: dict = {"hello": hello, "endpoints": {}}
        for name in names:
            pair = {}
            for side in order:
                pair[side.name] = r = measure(cfg, side, name)
                if "rps" in r:
                    flag = "" if r["valid"] else f"  INVALID {r['statuses']}"
                    print(f"  {name:<20} {side.name:<5} {r['rps']:>9.1f} req/s  p50 {r['p50_ms']:>7.2f} ms  "
                          f"p99 {r['p99_ms']:>7.2f} ms{flag}", flush=True)
                else:
                    print(f"  {name:<20} {side.name:<5} skipped: {r['skipped']}", flush=True)
            result["endpoints"][name] = with_ratio(pair, hello["rps"])
        out.append(result)
    return out


def with_ratio(pair: dict, hello_rps: float) -> dict:
    a, b = pair.get("ours", {}), pair.get("peer", {})
    if a.get("valid") and b.get("valid") and b["rps"] and b["p99_ms"]:
        pair["ratio"] = round(a["rps"] / b["rps"], 3)
        pair["p99_factor"] = round(a["p99_ms"] / b["p99_ms"], 2)
    if a.get("valid") and hello_rps:
        pair["ours_to_hello"] = round(a["rps"] / hello_rps, 3)
    return pair


def summary(per_round: list[dict], names: list[str]) -> dict:
    """Per endpoint: medians over the rounds of req/s, p50, p99, the ratio and the p99 factor."""
    out = {}
    for name in names:
        pairs = [r["endpoints"][name] for r in per_round if name in r["endpoints"]]
        row: dict = {"ratios": [p["ratio"] for p in pairs if "ratio" in p],
                     "p99_factors": [p["p99_factor"] for p in pairs if "p99_factor" in p]}
        for side in ("ours", "peer"):
            valid = [p[side] for p in pairs if p.get(side, {}).get("valid")]
            for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request"):
                known = [v[key] for v in valid if key in v]
                row[f"{side}_{key}"] = statistics.median(known) if known else None
        row["ratio"] = statistics.median(row["ratios"]) if row["ratios"] else None
        row["p99_factor"] = statistics.median(row["p99_factors"]) if row["p99_factors"] else None
        hellos = [p["ours_to_hello"] for p in pairs if "ours_to_hello" in p]
        row["ours_to_hello"] = statistics.median(hellos) if hellos else None
        target = TARGETS.get(name)
        row["target"] = target
        row["target_met"] = None if target is None or row["ratio"] is None else row["ratio"] >= target
        row["p99_met"] = None if row["p99_factor"] is None else row["p99_factor"] <= P99_FACTOR
        out[name] = row
    return out


def table(report: dict) -> str:
    head = (f"{'endpoint':<19} {'ours req/s':>10} {'p50':>6} {'p99':>7} {'peer req/s':>10} {'p50':>6} {'p99':>7} "
            f"{'ratio':>6} {'target':>7} {'CPU µs/req':>12} {'p99 x':>6}  ratios per round")
    rows = [head]
    for name, s in report["summary"].items():
        def f(v, fmt):
            return format(v, fmt) if v is not None else "-"

        verdict = "" if s["target"] is None else ("met" if s["target_met"] else "MISSED")
        rows.append(
            f"{name:<19} {f(s['ours_rps'], '10.0f')} {f(s['ours_p50_ms'], '6.1f')} {f(s['ours_p99_ms'], '7.1f')} "
            f"{f(s['peer_rps'], '10.0f')} {f(s['peer_p50_ms'], '6.1f')} {f(s['peer_p99_ms'], '7.1f')} "
            f"{f(s['ratio'], '6.2f')} {('≥' + str(s['target'])) if s['target'] else '':>7} "
            f"{f(s['ours_cpu_us_per_request'], '6.0f')}/{f(s['peer_cpu_us_per_request'], '<5.0f')} "
            f"{f(s['p99_factor'], '6.2f')}  {' '.join(f'{r:.2f}' for r in s['ratios'])}  {verdict}"
            + ("" if s["p99_met"] in (None, True) else "  p99 > 2x"))
    hello = statistics.median(r["hello"]["rps"] for r in report["rounds"])
    rows.append(f"our hello view (median of rounds): {hello:.0f} req/s; req/s, p50, p99 (ms): medians over "
                f"{len(report['rounds'])} round(s); ratio = ours/peer req/s, p99 x = ours/peer p99; CPU: "
                "server processes' CPU per answer, ours/peer (ours: granian and its workers, not PostgreSQL/Redis)")
    return "\n".join(rows)


def markdown(report: dict) -> str:
    env = report.get("environment", {})
    rows = [f"Taken {env.get('when_utc', '?')} at commit {env.get('commit', '?')}; {env.get('cpus', '?')} CPUs, "
            f"load average {', '.join(f'{x:.1f}' for x in env.get('loadavg_at_start', []))} at start; ours: "
            f"{env.get('server', '')}; peer: node oidc-provider {env.get('peer', '')}, one process, in memory; "
            f"wrk {env.get('connections')} connections, {env.get('duration_s')} s per run, "
            f"{len(report['rounds'])} rounds.", "",
            "| endpoint | ours req/s | p50 ms | p99 ms | peer req/s | p50 ms | p99 ms | ratio (median) | "
            "per round | target | p99 × peer | CPU µs/answer ours · peer | ours / hello |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---:|"]

    def f(v, fmt):
        return format(v, fmt) if v is not None else "–"

    for name, s in report["summary"].items():
        target = "" if s["target"] is None else f"≥ {s['target']}: " + ("met" if s["target_met"] else "**missed**")
        p99 = f(s["p99_factor"], ".2f") + ("" if s["p99_met"] in (None, True) else " **> 2**")
        rows.append(f"| {name} | {f(s['ours_rps'], ',.0f')} | {f(s['ours_p50_ms'], '.1f')} | "
                    f"{f(s['ours_p99_ms'], '.1f')} | {f(s['peer_rps'], ',.0f')} | {f(s['peer_p50_ms'], '.1f')} | "
                    f"{f(s['peer_p99_ms'], '.1f')} | {f(s['ratio'], '.2f')} | "
                    f"{' · '.join(f'{r:.2f}' for r in s['ratios'])} | {target} | {p99} | "
                    f"{f(s.get('ours_cpu_us_per_request'), ',.0f')} · {f(s.get('peer_cpu_us_per_request'), ',.0f')} | "
                    f"{f(s['ours_to_hello'], '.2f')} |")
    hello = statistics.median(r["hello"]["rps"] for r in report["rounds"])
    rows.append(f"\nOur Django hello view: {hello:,.0f} req/s (median of the rounds).")
    return "\n".join(rows)


def main_compare(cfg: Config, world, server: run.Server) -> dict:
    peer = Peer(cfg.peer_port, cfg.peer_admin_port, run.OUT_DIR / "peer.log")
    peer.start()
    try:
        sides = [ours(cfg, world, server), peer_side(cfg, peer)]
        names = [n for n in COMPARED if not cfg.only or n in cfg.only]
        per_round = rounds(cfg, sides, names)
    finally:
        peer.stop()
    report = {"rounds": per_round, "summary": summary(per_round, names), "peer": peer_version()}
    return report


