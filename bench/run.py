"""`make bench`: the service as deployed, under bounded load, against a hello-world ceiling.

    python -m bench.run                 # every scenario, ~3 minutes
    python -m bench.run --scale         # the same at 1,000 and at 1,000,000 tokens / 100,000 clients
    python -m bench.run --soak 300      # a 5-minute mixed run, sampling worker RSS

It recreates its own database (BENCH_DATABASE_URL, default .../mcpauth_bench) and Redis database
(BENCH_REDIS_URL, default db 9), seeds a project (bench/seed.py), starts the server as shipped
(mcpauth_service/serve.py: granian, WEB_WORKERS/WEB_THREADS honoured; DEBUG off, a random
SECRET_KEY, PostgreSQL, Redis) on a loopback port, and drives it with wrk (bench/lua/*.lua; 50 connections). Each scenario is probed with one
real request first (a wrong seed or a missing endpoint is reported, not timed), then measured.
Results: a table on stdout and JSON in var/bench/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "bench" / "lua"
OUT_DIR = Path(os.environ.get("BENCH_OUT_DIR") or ROOT / "var" / "bench")

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mcpauth_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"

# Ratio to the hello-world ceiling each scenario should reach (issue 8).
TARGETS = {
    "discovery": 0.9,
    "jwks": 0.9,
    "introspect_warm": 0.7,
    "client_credentials": 0.4,
    "authorization_code": 0.3,
    "refresh": 0.3,
    "register": 0.3,
}
SCALE_P99_FACTOR = 1.3
RSS_FLAT = 0.10


# --- scenarios ---------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One measured request type. `method/path/headers/body` mirror the Lua script (for the probe)."""

    name: str
    script: str
    method: str
    path: str
    expect: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    expect_body: str = ""  # a regex the probe's body must match
    once: bool = False  # one-shot values: each used once (codes, refresh tokens, revoked tokens)
    origin: bool = False  # path is on the origin, not under the issuer

    def fill(self, template: str, fields: list[str]) -> str:
        return re.sub(r"\{(\d+)\}", lambda m: fields[int(m.group(1)) - 1] if int(m.group(1)) <= len(fields) else "",
                      template)


FORM = "application/x-www-form-urlencoded"
SCENARIOS = {
    s.name: s
    for s in [
        Scenario("hello", "hello.lua", "GET", "/bench/hello", origin=True, expect_body="Hello"),
        Scenario("discovery", "discovery.lua", "GET", "/.well-known/oauth-authorization-server",
                 expect_body='"issuer"'),
        Scenario("jwks", "jwks.lua", "GET", "/.well-known/jwks.json", expect_body='"keys"'),
        Scenario("register", "register.lua", "POST", "/api/oauth/register", expect=201,
                 headers={"Content-Type": "application/json"}, expect_body='"client_id"',
                 body=json.dumps({"client_name": "Bench MCP client",
                                  "redirect_uris": ["http://127.0.0.1:33418/callback"],
                                  "grant_types": ["authorization_code", "refresh_token"],
                                  "response_types": ["code"], "token_endpoint_auth_method": "none"})),
        Scenario("client_credentials", "client_credentials.lua", "POST", "/oauth/token",
                 headers={"Content-Type": FORM, "Authorization": "{1}"}, body="grant_type=client_credentials",
                 expect_body='"access_token"'),
        Scenario("authorization_code", "authorization_code.lua", "POST", "/oauth/token", once=True,
                 headers={"Content-Type": FORM}, expect_body='"access_token"',
                 body="grant_type=authorization_code&code={1}&code_verifier={2}&redirect_uri={3}&client_id={4}"),
        Scenario("refresh", "refresh.lua", "POST", "/oauth/token", once=True, headers={"Content-Type": FORM},
                 body="grant_type=refresh_token&refresh_token={1}&client_id={2}", expect_body='"refresh_token"'),
        Scenario("introspect_warm", "introspect.lua", "POST", "/oauth/introspect",
                 headers={"Content-Type": FORM, "Authorization": "{1}"}, body="token={2}",
                 expect_body=r'"active":\s*true'),
        Scenario("introspect_cold", "introspect_cold.lua", "POST", "/oauth/introspect", once=True,
                 headers={"Content-Type": FORM, "Authorization": "{1}"}, body="token={2}",
                 expect_body=r'"active":\s*true'),
        Scenario("revoke", "revoke.lua", "POST", "/oauth/revoke", once=True,
                 headers={"Content-Type": FORM, "Authorization": "{1}"},
                 body="token={2}&token_type_hint=access_token"),
    ]
}
ORDER = ["hello", "discovery", "jwks", "register", "client_credentials", "authorization_code", "refresh",
         "introspect_warm", "introspect_cold", "revoke"]


# --- environment --------------------------------------------------------------------------------------


@dataclass
class Config:
    port: int
    duration: int
    warmup: int
    connections: int
    threads: int
    database_url: str
    redis_url: str
    only: list[str]
    scale: bool
    scale_tokens: int
    scale_clients: int
    base_tokens: int
    soak: int
    rounds: int = 3
    peer: bool = True
    peer_port: int = 0  # 0: port + 1 (its admin API: port + 2)
    peer_admin_port: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def configure_environment(cfg: Config) -> None:
    """The server's environment, shared with this process (seeding needs the same DIGEST_KEY)."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": cfg.database_url,
        "REDIS_URL": cfg.redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DIGEST_KEY": secrets.token_urlsafe(48),
        "KEY_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        "PUBLIC_URL": cfg.origin,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "BENCH_HELLO": "true",
        # Every request comes from 127.0.0.1: measuring 429s would measure nothing.
        "RATE_LIMITS": "off",
        "CACHE_KEY_PREFIX": "mcpauth-bench",
        "BENCH_LUA_DIR": str(LUA_DIR),
    })


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]+", name) or "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: the bench only recreates a *bench* database")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("make bench needs wrk (HTTP load generator): apt-get install -y wrk  (Debian/Ubuntu)")
    return path


# --- the server -------------------------------------------------------------------------------------


class Server:
    """The server as shipped (mcpauth_service/serve.py), DEBUG off; `server`/`workers`/`threads`
    override the shipped defaults for the process-model comparison (bench/process_model.py)."""

    def __init__(self, cfg: Config, server: str | None = None, workers: int | None = None,
                 threads: int | None = None):
        from mcpauth_service import serve

        self.cfg = cfg
        self.server = server or os.environ.get("WEB_SERVER") or serve.DEFAULT_SERVER
        self.workers = workers or int(os.environ.get("WEB_WORKERS") or serve.default_workers())
        self.threads = threads or int(os.environ.get("WEB_THREADS") or serve.DEFAULT_THREADS)
        # Exactly what ships: the serve module (system checks, then exec of the server) with its flags.
        self.cmd = [sys.executable, "-m", "mcpauth_service.serve", "--host", "127.0.0.1", "--port", str(cfg.port),
                    "--server", self.server, "--workers", str(self.workers), "--threads", str(self.threads)]
        self.proc: subprocess.Popen | None = None
        self.log_path = OUT_DIR / "server.log"

    @property
    def label(self) -> str:
        threads = "" if self.server == "sync" else f" x {self.threads} threads"
        return f"{self.server}, {self.workers} workers{threads}"

    def start(self) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.server} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, _, _ = request(self.cfg.port, "GET", "/healthz")
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.server} did not answer /healthz within 60 s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return sorted(int(pid) for pid in children)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master we started; it stops its own workers
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def request(port: int, method: str, path: str, headers: dict | None = None, body: str = "") -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body.encode() if body else None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace"), dict(response.getheaders())
    finally:
        conn.close()


# --- wrk ----------------------------------------------------------------------------------------------


RESULT = re.compile(r"^BENCH_RESULT (\{.*\})\s*$", re.M)


def parse_wrk_output(output: str) -> dict:
    """The JSON line bench/lua/common.lua prints from done()."""
    match = RESULT.search(output)
    if not match:
        raise ValueError("no BENCH_RESULT line in wrk output:\n" + output[-2000:])
    return json.loads(match.group(1))


def summarize(raw: dict, expect: int) -> dict:
    """req/s and latency (ms) of one wrk run, with the share of answers that were not the expected one."""
    duration = raw["duration_us"] / 1e6
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    answered = sum(statuses.values())
    correct = (sum(v for k, v in statuses.items() if 200 <= k < 300) if expect == 0  # 0: any 2xx (mixed)
               else statuses.get(expect, 0))
    unexpected = answered - correct + raw.get("bad_body", 0)
    socket_errors = sum(v for k, v in raw["errors"].items() if k != "status")
    return {
        "requests": raw["requests"],
        "duration_s": round(duration, 3),
        "rps": round(raw["requests"] / duration, 1) if duration else 0.0,
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p90_ms": round(raw["latency_us"]["p90"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "max_ms": round(raw["latency_us"]["max"] / 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "unexpected": unexpected,
        "socket_errors": socket_errors,
        "exhausted": bool(raw.get("exhausted")),
        # Timeouts too: a server that leaves some connections unanswered (granian with a low
        # --backpressure) shows a fine p99 of the ones it answers.
        "valid": (answered > 0 and unexpected <= 0.01 * answered and socket_errors <= 0.01 * answered
                  and not raw.get("exhausted")),
    }


def run_wrk(cfg: Config, scenario: Scenario, base: str, values: Path | None, duration: int) -> dict:
    cmd = ["wrk", f"-t{cfg.threads}", f"-c{cfg.connections}", f"-d{duration}s", "--timeout", "10s",
           "-s", str(LUA_DIR / scenario.script), cfg.origin, "--",
           f"base={'' if scenario.origin else base}", f"values={values or ''}", f"threads={cfg.threads}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-1000:]}")
    return summarize(parse_wrk_output(proc.stdout), scenario.expect)


# --- seeding per scenario -------------------------------------------------------------------------------


def values_for(scenario: Scenario, world, pool: int, warm_tokens: list[str]) -> list[list[str]]:
    """The value lines a scenario's Lua script reads (the first one is spent on the probe).

    Tables that just grew by a bulk load are ANALYZEd, as autovacuum does in a live deployment:
    with the statistics of an empty table, PostgreSQL plans sequential scans.
    """
    lines = _values_for(scenario, world, pool, warm_tokens)
    if scenario.once:
        from . import seed

        seed.analyze()
    return lines


def _values_for(scenario: Scenario, world, pool: int, warm_tokens: list[str]) -> list[list[str]]:
    from . import seed

    name = scenario.name
    if name == "client_credentials":
        return [[c.basic] for c in world.cc_clients]
    if name == "authorization_code":
        uri = quote(seed.REDIRECT_URI, safe="")
        return [[code, verifier, uri, world.public_client.client_id]
                for code, verifier in seed.authorization_codes(world, pool)]
    if name == "refresh":
        return [[token, world.public_client.client_id] for token in seed.refresh_tokens(world, pool)]
    if name == "introspect_warm":
        return [[f"Bearer {world.introspect_secret}", t] for t in warm_tokens]
    if name == "introspect_cold":
        tokens = seed.access_tokens(world, pool, world.cc_clients[0])
        return [[f"Bearer {world.introspect_secret}", t] for t in tokens]
    if name == "revoke":
        tokens = seed.access_tokens(world, pool, world.revoke_client)
        return [[world.revoke_client.basic, t] for t in tokens]
    return []


def probe(cfg: Config, scenario: Scenario, base: str, fields: list[str]) -> tuple[bool, str]:
    """One real request; (usable, reason). Nothing secret is kept from the answer."""
    path = (scenario.path if scenario.origin else base + scenario.fill(scenario.path, fields))
    headers = {k: scenario.fill(v, fields) for k, v in scenario.headers.items()}
    headers = {k: v for k, v in headers.items() if v}
    status, body, _ = request(cfg.port, scenario.method, path, headers, scenario.fill(scenario.body, fields))
    if status == scenario.expect and (not scenario.expect_body or re.search(scenario.expect_body, body)):
        return True, "ok"
    error = ""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            error = f" {parsed.get('error', '')}: {str(parsed.get('error_description', ''))[:120]}"
    except ValueError:
        pass
    if status in (404, 405) and not error:
        return False, f"endpoint not available yet ({status})"
    return False, f"probe answered {status}{error} (expected {scenario.expect})"


def measure(cfg: Config, world, names: list[str], ceiling_hint: float, label: str) -> dict:
    """Run `names` in order; returns {name: result}. `ceiling_hint` sizes one-shot pools."""
    from . import seed

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    values_dir = OUT_DIR / "values"
    values_dir.mkdir(exist_ok=True)
    results: dict[str, dict] = {}
    warm_tokens = seed.access_tokens(world, 200, world.cc_clients[0])
    for name in names:
        scenario = SCENARIOS[name.split("#")[0]]
        load = os.getloadavg()[0]
        pool = int(max(ceiling_hint, 500) * cfg.duration * 1.2) + 50
        lines = values_for(scenario, world, pool, warm_tokens)
        values_path = None
        if lines:
            probe_fields, lines = (lines[0], lines[1:]) if scenario.once else (lines[0], lines)
            values_path = values_dir / f"{scenario.name}.tsv"
            seed.write_values(values_path, lines)
        else:
            probe_fields = []
        ok, reason = probe(cfg, scenario, world.base_path, probe_fields)
        if not ok:
            results[name] = {"skipped": reason}
            print(f"  {label}{name:<20} skipped: {reason}", flush=True)
            continue
        if not scenario.once and cfg.warmup:
            run_wrk(cfg, scenario, world.base_path, values_path, cfg.warmup)
        result = run_wrk(cfg, scenario, world.base_path, values_path, cfg.duration)
        result["loadavg_1m_before"] = round(load, 2)
        result["seeded_values"] = len(lines)
        results[name] = result
        flag = "" if result["valid"] else "  (INVALID: unexpected answers or ran out of values)"
        print(f"  {label}{name:<20} {result['rps']:>9.1f} req/s  p50 {result['p50_ms']:>7.2f} ms  "
              f"p99 {result['p99_ms']:>7.2f} ms  {result['statuses']}{flag}", flush=True)
    return results


def with_ratios(results: dict) -> dict:
    """Adds the ceiling (mean of the hello runs) and each scenario's ratio to it."""
    hellos = [r["rps"] for n, r in results.items() if n.startswith("hello") and "rps" in r]
    ceiling = sum(hellos) / len(hellos) if hellos else 0.0
    for name, r in results.items():
        if "rps" not in r:
            continue
        r["ratio"] = round(r["rps"] / ceiling, 3) if ceiling else None
        target = TARGETS.get(name)
        if target is not None:
            r["target"] = target
            r["target_met"] = bool(r["valid"] and r["ratio"] is not None and r["ratio"] >= target)
    return {"ceiling_rps": round(ceiling, 1), "scenarios": results}


def table(report: dict) -> str:
    rows = [f"{'scenario':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'target':>7}  note"]
    for name, r in report["scenarios"].items():
        if "rps" not in r:
            rows.append(f"{name:<20} {'-':>9} {'-':>8} {'-':>8} {'-':>6} {'-':>7}  {r.get('skipped', '')}")
            continue
        target = r.get("target")
        note = ("met" if r.get("target_met") else "MISSED") if target is not None else ""
        if not r["valid"]:
            note = f"INVALID {r['statuses']}"
        rows.append(f"{name:<20} {r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                    f"{(r['ratio'] or 0):>6.2f} {('≥' + str(target)) if target else '':>7}  {note}")
    rows.append(f"ceiling (hello-world view, mean of first and last run): {report['ceiling_rps']} req/s")
    return "\n".join(rows)


def markdown(report: dict) -> str:
    """The table of docs/performance.md, from a results JSON."""
    rows = ["| scenario | req/s | p50 ms | p99 ms | ratio to ceiling | target | |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for name, r in report["scenarios"].items():
        if "rps" not in r:
            rows.append(f"| {name} | – | – | – | – | | {r.get('skipped', '')} |")
            continue
        target = r.get("target")
        note = ("met" if r.get("target_met") else "**missed**") if target is not None else ""
        if not r["valid"]:
            note = f"invalid run: {r['statuses']}"
        rows.append(f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['ratio']:.2f} | "
                    f"{('≥ ' + str(target)) if target else ''} | {note} |")
    rows.append(f"\nCeiling (hello-world view, mean of the first and last run): {report['ceiling_rps']:,.0f} req/s.")
    return "\n".join(rows)


def markdown_any(report: dict) -> str:
    """Standard, scale or soak results as Markdown."""
    env = report.get("environment", {})
    head = (f"Taken {env.get('when_utc', '?')} at commit {env.get('commit', '?')}; {env.get('cpus', '?')} CPUs, "
            f"load average {', '.join(f'{x:.1f}' for x in env.get('loadavg_at_start', []))} at start; "
            f"{env.get('server', '')}; wrk {env.get('connections')} connections, {env.get('duration_s')} s per scenario.")
    if "summary" in report:
        from . import compare

        return compare.markdown(report)
    if "scenarios" in report:
        return head + "\n\n" + markdown(report)
    if "p99_comparison" in report:
        rows = ["| scenario | p99 at 1,000 tokens (ms) | p99 at 1,000,000 tokens + 100,000 clients (ms) | factor | "
                "factor / hello drift | ≤ 1.3 |", "|---|---:|---:|---:|---:|---|"]
        for name, c in report["p99_comparison"].items():
            rows.append(f"| {name} | {c['p99_base_ms']:.1f} | {c['p99_scale_ms']:.1f} | {c['factor']:.2f} | "
                        f"{c.get('factor_vs_hello_drift', float('nan')):.2f} | {'met' if c['target_met'] else '**missed**'} |")
        return (head + f" Bulk load: {report['load_seconds']} s.\n\n" + "\n".join(rows)
                + "\n\nBaseline phase:\n\n" + markdown(report["baseline"])
                + "\n\nScale phase:\n\n" + markdown(report["scale"]))
    rows = ["| worker | RSS after 30 s (MiB) | RSS at the end (MiB) | max (MiB) | growth | flat (≤ 10 %) |",
            "|---|---:|---:|---:|---:|---|"]
    for pid, w in report["workers"].items():
        rows.append(f"| {pid} | {w['settled_kib'] / 1024:.1f} | {w['last_kib'] / 1024:.1f} | {w['max_kib'] / 1024:.1f} | "
                    f"{w['growth_after_30s'] * 100:+.2f} % | {'yes' if w['flat'] else '**no**'} |")
    mix = report["mix"]
    return (head + f" Mixed load for {mix['duration_s']:.0f} s: {mix['requests']:,} requests, {mix['rps']:,.0f} req/s, "
            f"answers {mix['statuses']}.\n\n" + "\n".join(rows))


# --- modes ------------------------------------------------------------------------------------------------


def environment_facts(cfg: Config) -> dict:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": out(["git", "rev-parse", "--short", "HEAD"])
        + ("+uncommitted" if out(["git", "status", "--porcelain", "--untracked-files=no"]) else ""),
        "cpus": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()),
        "wrk": (out(["wrk", "--version"]).splitlines() or [""])[0],
        "server": "DEBUG off, PostgreSQL, Redis, loopback",
        "connections": cfg.connections,
        "wrk_threads": cfg.threads,
        "duration_s": cfg.duration,
        "warmup_s": cfg.warmup,
    }


def names_to_run(cfg: Config) -> list[str]:
    names = [n for n in ORDER if not cfg.only or n in cfg.only or n == "hello"]
    return names + ["hello#2"]


def main_standard(cfg: Config, world, server: Server) -> dict:
    hello = run_wrk(cfg, SCENARIOS["hello"], "", None, 3)  # a first look at the ceiling, sizes the pools
    print(f"  (ceiling estimate {hello['rps']:.0f} req/s)", flush=True)
    results = measure(cfg, world, names_to_run(cfg), hello["rps"], "")
    return with_ratios(results)


def main_scale(cfg: Config, world, server: Server) -> dict:
    from . import seed

    hello = run_wrk(cfg, SCENARIOS["hello"], "", None, 3)
    print(f"== baseline: {cfg.base_tokens:,} background tokens", flush=True)
    small = with_ratios(measure(cfg, world, names_to_run(cfg), hello["rps"], "base "))
    started = time.monotonic()
    print(f"== loading {cfg.scale_clients:,} clients and {cfg.scale_tokens - cfg.base_tokens:,} more tokens",
          flush=True)
    clients = seed.background_clients(world, cfg.scale_clients)
    seed.background_tokens(world, cfg.scale_tokens - cfg.base_tokens, clients)
    seed.analyze()
    load_seconds = round(time.monotonic() - started, 1)
    print(f"   loaded in {load_seconds} s", flush=True)
    big = with_ratios(measure(cfg, world, names_to_run(cfg), hello["rps"], "scale "))
    comparison = {}
    for name, r in big["scenarios"].items():
        base = small["scenarios"].get(name, {})
        if "p99_ms" in r and "p99_ms" in base and base["p99_ms"]:
            factor = round(r["p99_ms"] / base["p99_ms"], 2)
            comparison[name] = {"p99_base_ms": base["p99_ms"], "p99_scale_ms": r["p99_ms"], "factor": factor,
                                "target_met": factor <= SCALE_P99_FACTOR}
            # The same factor relative to the hello view's own p99 drift between the two phases:
            # on a shared machine, background load moves both alike.
            hello_base, hello_big = small["scenarios"].get("hello", {}), big["scenarios"].get("hello", {})
            if hello_base.get("p99_ms") and hello_big.get("p99_ms"):
                drift = hello_big["p99_ms"] / hello_base["p99_ms"]
                comparison[name]["factor_vs_hello_drift"] = round(factor / drift, 2)
    return {"baseline": small, "scale": big, "load_seconds": load_seconds, "p99_comparison": comparison,
            "background": {"tokens": cfg.scale_tokens, "clients": cfg.scale_clients}}


def soak_values(world, warm_tokens: list[str]) -> list[list[str]]:
    register = SCENARIOS["register"].body
    base = world.base_path
    lines = []
    for i in range(60):
        client = world.cc_clients[i % len(world.cc_clients)]
        token = warm_tokens[i % len(warm_tokens)]
        lines += [
            ["POST", base + "/oauth/token", client.basic, FORM, "grant_type=client_credentials"],
            ["POST", base + "/oauth/introspect", f"Bearer {world.introspect_secret}", FORM, f"token={token}"],
            ["POST", base + "/oauth/token", client.basic, FORM, "grant_type=client_credentials"],
            ["POST", base + "/oauth/introspect", f"Bearer {world.introspect_secret}", FORM, f"token={token}"],
            ["GET", base + "/.well-known/oauth-authorization-server", "", "", ""],
            ["GET", base + "/.well-known/jwks.json", "", "", ""],
        ]
        if i % 2 == 0:
            lines.append(["POST", base + "/api/oauth/register", "", "application/json", register])
    return lines


def main_soak(cfg: Config, world, server: Server) -> dict:
    from . import seed

    warm = seed.access_tokens(world, 200, world.cc_clients[0])
    values = OUT_DIR / "values" / "mixed.tsv"
    values.parent.mkdir(parents=True, exist_ok=True)
    seed.write_values(values, soak_values(world, warm))
    mixed = Scenario("mixed", "mixed.lua", "GET", "/")
    run_wrk(cfg, mixed, "", values, 10)  # warm-up: imports, caches, connection pools
    samples: list[dict] = []
    stop = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not stop.is_set():
            pids = server.worker_pids()
            samples.append({"t": round(time.monotonic() - started, 1), "rss_kib": {p: rss_kib(p) for p in pids}})
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run_wrk(cfg, mixed, "", values, cfg.soak)
    stop.set()
    sampler.join()
    workers = {}
    for pid in {p for s in samples for p in s["rss_kib"]}:
        series = [s["rss_kib"][pid] for s in samples if s["rss_kib"].get(pid)]
        if len(series) < 2:
            continue
        settled = series[min(6, len(series) - 1)]  # 30 s in: after the first requests have filled caches
        growth = (series[-1] - settled) / settled
        workers[str(pid)] = {"first_kib": series[0], "settled_kib": settled, "last_kib": series[-1],
                             "max_kib": max(series), "growth_after_30s": round(growth, 4),
                             "flat": abs(growth) <= RSS_FLAT and (max(series) - settled) / settled <= RSS_FLAT}
    ok = sum(v for k, v in result["statuses"].items() if k.startswith("2"))
    result["valid"] = ok >= 0.99 * sum(result["statuses"].values())
    return {"mix": result, "workers": workers, "samples": samples,
            "target_met": bool(workers) and all(w["flat"] for w in workers.values())}


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", 8097)))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 8)))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated scenario names (hello always runs)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours and the peer, alternating")
    parser.add_argument("--peer-port", type=int, default=0, help="the peer's port (default: --port + 1)")
    parser.add_argument("--peer-admin-port", type=int, default=0, help="its admin API (default: --port + 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round of 2-second runs")
    parser.add_argument("--no-peer", action="store_true",
                        help="ours alone against the hello view (the pre-issue-17 report), no node peer")
    parser.add_argument("--scale", action="store_true", help="compare 1,000 with 1,000,000 tokens")
    parser.add_argument("--scale-tokens", type=int, default=1_000_000)
    parser.add_argument("--scale-clients", type=int, default=100_000)
    parser.add_argument("--base-tokens", type=int, default=1_000)
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="mixed load, sampling worker RSS")
    parser.add_argument("--markdown", metavar="RESULTS_JSON", help="print a results file as a Markdown table; no run")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_any(json.loads(Path(args.markdown).read_text())))
        raise SystemExit(0)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(only) - set(SCENARIOS) - {"mixed"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.warmup, args.rounds = 2, 1, 1
    return Config(port=args.port, duration=args.duration, warmup=args.warmup, connections=args.connections,
                  threads=args.threads, database_url=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
                  redis_url=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL), only=only, scale=args.scale,
                  scale_tokens=args.scale_tokens, scale_clients=args.scale_clients, base_tokens=args.base_tokens,
                  soak=args.soak, rounds=args.rounds, peer=not args.no_peer,
                  peer_port=args.peer_port or args.port + 1, peer_admin_port=args.peer_admin_port or args.port + 2)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    require_wrk()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    configure_environment(cfg)
    print(f"bench: recreating {urlsplit(cfg.database_url).path.lstrip('/')} and Redis {cfg.redis_url}", flush=True)
    recreate_database(cfg.database_url)
    flush_redis(cfg.redis_url)
    setup_django()

    from django.db import connection

    from . import seed

    world = seed.create_world()
    seed.background_tokens(world, cfg.base_tokens, [c.pk for c in world.cc_clients])
    seed.analyze()
    connection.close()
    facts = environment_facts(cfg)
    server = Server(cfg)
    facts["server"] = f"{server.label}, " + facts["server"]
    print(f"bench: serving with {server.label}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    server.start()
    try:
        if cfg.soak:
            report, out = main_soak(cfg, world, server), OUT_DIR / "results-soak.json"
            print(json.dumps({"workers": report["workers"], "mix_rps": report["mix"]["rps"],
                              "target_met": report["target_met"]}, indent=2))
        elif cfg.scale:
            report, out = main_scale(cfg, world, server), OUT_DIR / "results-scale.json"
            print("\n== baseline\n" + table(report["baseline"]) + "\n\n== scale\n" + table(report["scale"]))
            print("\np99 at scale / p99 at baseline (target ≤ 1.3):")
            for name, c in report["p99_comparison"].items():
                print(f"  {name:<20} {c['p99_base_ms']:>8.2f} -> {c['p99_scale_ms']:>8.2f} ms  x{c['factor']}"
                      f"  {'met' if c['target_met'] else 'MISSED'}"
                      f"  (x{c.get('factor_vs_hello_drift', '?')} relative to the hello view's drift)")
        elif cfg.peer:
            from . import compare

            report, out = compare.main_compare(cfg, world, server), OUT_DIR / "results.json"
            facts["peer"] = report["peer"]
            print("\n" + compare.table(report))
        else:
            report, out = main_standard(cfg, world, server), OUT_DIR / "results-alone.json"
            print("\n" + table(report))
    finally:
        server.stop()
    facts["loadavg_at_end"] = list(os.getloadavg())
    report["environment"] = facts
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
