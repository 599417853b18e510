"""The process-model comparison: gunicorn sync, gunicorn gthread and granian, in one run.

    python -m bench.process_model                      # 3 rounds, ~8 minutes
    python -m bench.process_model --rounds 1 --duration 5 --slow-seconds 10

Same database, same seeded project, same wrk scripts (keep-alive, 50 connections) as `make bench`.
Each round starts each server in turn (the order rotates from round to round, so background load
on a shared machine falls on all of them alike), measures discovery, warm introspection and
client_credentials, and stops it. Ratios to gunicorn sync are taken within each round; the report
gives their median. In the first round each server also faces a bounded slow-client attack
(bench/slowclients.py) while a normal client asks for discovery once a second.
Results: a table on stdout and var/bench/process-model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
from urllib.parse import urlsplit

from . import run
from .slowclients import attack

SCENARIOS = ["discovery", "introspect_warm", "client_credentials"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--slow-seconds", type=int, default=20, help="0: no slow-client attack")
    parser.add_argument("--slow-headers", type=int, default=20)
    parser.add_argument("--short-bodies", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread's threads per worker")
    parser.add_argument("--also", action="append", default=[], metavar="SERVER:WORKERS:THREADS",
                        help="one more configuration to compare, e.g. granian:2:8 (repeatable)")
    return parser.parse_args(argv)


def label(model: tuple[str, int, int]) -> str:
    server, workers, threads = model
    return f"{server} {workers}w" + ("" if server == "sync" else f"x{threads}t")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mcpauth_service import serve

    # sync as it shipped until now, gthread with --threads, granian as it ships (serve.DEFAULT_THREADS).
    models = [("sync", args.workers, 1), ("gthread", args.workers, args.threads),
              ("granian", args.workers, serve.DEFAULT_THREADS)]
    for extra in args.also:
        server, workers, threads = extra.split(":")
        models.append((server, int(workers), int(threads)))
    cfg = run.parse_args(["--duration", str(args.duration)])
    run.require_wrk()
    run.OUT_DIR.mkdir(parents=True, exist_ok=True)
    run.configure_environment(cfg)
    print(f"bench: recreating {urlsplit(cfg.database_url).path.lstrip('/')} and Redis {cfg.redis_url}", flush=True)
    run.recreate_database(cfg.database_url)
    run.flush_redis(cfg.redis_url)
    run.setup_django()

    from django.db import connection

    from . import seed

    world = seed.create_world()
    seed.background_tokens(world, cfg.base_tokens, [c.pk for c in world.cc_clients])
    seed.analyze()
    warm = seed.access_tokens(world, 200, world.cc_clients[0])
    values: dict[str, object] = {}
    for name in SCENARIOS:
        lines = run.values_for(run.SCENARIOS[name], world, 0, warm)
        path = run.OUT_DIR / "values" / f"pm-{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        if lines:
            seed.write_values(path, lines)
        values[name] = (path if lines else None, lines[0] if lines else [])
    connection.close()
    facts = run.environment_facts(cfg)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    rounds: list[dict] = []
    slow: dict[str, dict] = {}
    for index in range(args.rounds):
        order = models[index % len(models):] + models[:index % len(models)]
        results: dict[str, dict] = {}
        for model in order:
            server = run.Server(cfg, server=model[0], workers=model[1], threads=model[2])
            server.start()
            try:
                results[label(model)] = per = {}
                for name in SCENARIOS:
                    scenario = run.SCENARIOS[name]
                    path, fields = values[name]
                    ok, reason = run.probe(cfg, scenario, world.base_path, fields)
                    if not ok:
                        raise SystemExit(f"{label(model)} {name}: {reason}")
                    run.run_wrk(cfg, scenario, world.base_path, path, 2)
                    per[name] = r = run.run_wrk(cfg, scenario, world.base_path, path, cfg.duration)
                    print(f"  round {index + 1} {label(model):<16} {name:<20} {r['rps']:>8.1f} req/s  "
                          f"p99 {r['p99_ms']:>7.2f} ms  {r['statuses']}", flush=True)
                if index == 0 and args.slow_seconds:
                    slow[label(model)] = outcomes = {}
                    for kind, headers, bodies in (("slow_headers", args.slow_headers, 0),
                                                  ("short_bodies", 0, args.short_bodies)):
                        outcome = attack(cfg.port, slow_headers=headers, short_bodies=bodies,
                                         seconds=args.slow_seconds,
                                         probe_path=world.base_path + "/.well-known/oauth-authorization-server",
                                         body_path=world.base_path + "/oauth/token")
                        outcomes[kind] = outcome.summary()
                        print(f"  {kind} vs {label(model):<16} {outcome.summary()}", flush=True)
            finally:
                server.stop()
        rounds.append(results)

    report = summarize(rounds, slow, [label(m) for m in models])
    report["environment"] = {**facts, "server": "compared: " + ", ".join(label(m) for m in models),
                             "rounds": args.rounds, "loadavg_at_end": list(os.getloadavg()),
                             "slow_clients": {"slow_headers": args.slow_headers, "short_bodies": args.short_bodies,
                                              "seconds": args.slow_seconds}}
    out = run.OUT_DIR / "process-model.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n" + markdown(report))
    print(f"\nwritten: {out}")
    return 0


def summarize(rounds: list[dict], slow: dict, labels: list[str]) -> dict:
    base = labels[0]
    table: dict[str, dict] = {}
    for lab in labels:
        table[lab] = {}
        for name in SCENARIOS:
            runs = [r[lab][name] for r in rounds if lab in r and name in r[lab]]
            ratios = [r[lab][name]["rps"] / r[base][name]["rps"] for r in rounds
                      if r.get(base, {}).get(name, {}).get("rps")]
            table[lab][name] = {
                "rps_median": round(statistics.median(x["rps"] for x in runs), 1),
                "p99_ms_median": round(statistics.median(x["p99_ms"] for x in runs), 2),
                "ratio_to_sync_median": round(statistics.median(ratios), 2) if ratios else None,
                "ratios_to_sync": [round(x, 2) for x in ratios],
                "valid": all(x["valid"] for x in runs),
            }
    return {"summary": table, "slow_clients": slow, "rounds": rounds}


def markdown(report: dict) -> str:
    rows = ["| server | " + " | ".join(f"{n} req/s (× sync) | {n} p99 ms" for n in SCENARIOS)
            + " | slowloris: probes answered | short bodies: probes answered |",
            "|---|" + "---:|---:|" * len(SCENARIOS) + "---|---|"]
    for lab, per in report["summary"].items():
        cells = []
        for name in SCENARIOS:
            r = per[name]
            cells.append(f"{r['rps_median']:,.0f} (× {r['ratio_to_sync_median']:.2f})")
            cells.append(f"{r['p99_ms_median']:.1f}")
        for kind in ("slow_headers", "short_bodies"):
            s = report["slow_clients"].get(lab, {}).get(kind, {})
            cells.append("not run" if not s else f"{s['answered']} of {s['probes']}"
                         + (f" (max {s['max_latency_ms']:.0f} ms)" if s["answered"] else ""))
        rows.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
