"""A py-spy flame graph of the server as shipped, under the bench's load on one scenario.

    pip install py-spy                                   # once, into the venv (not a dependency)
    python -m bench.flame client_credentials             # var/bench/flame-client_credentials.svg
    python -m bench.flame revoke --seconds 15 --rate 100

Same database, seeding, server command and wrk scripts as `make bench` (bench/run.py). py-spy
samples one worker process of the server (by function, not line) while wrk drives one scenario, and
keeps only the samples of threads holding the GIL (`--gil`): the graph shows Python CPU time, not
the eight threads per worker waiting on PostgreSQL or Redis (psycopg's wait looks busy to py-spy).
`--all-threads` keeps those too (wall time per thread).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading

from . import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(run.SCENARIOS))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--port", type=int, default=8197)
    parser.add_argument("--raw", action="store_true", help="collapsed stacks (.txt) instead of an SVG")
    parser.add_argument("--all-threads", action="store_true", help="wall time of every thread, not GIL holders")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(run.Path(sys.executable).parent))
    if not py_spy:
        raise SystemExit("bench.flame needs py-spy: pip install py-spy")
    cfg = run.parse_args(["--port", str(args.port), "--duration", str(args.seconds + 4), "--no-peer"])
    run.require_wrk()
    run.OUT_DIR.mkdir(parents=True, exist_ok=True)
    run.configure_environment(cfg)
    run.recreate_database(cfg.database_url)
    run.flush_redis(cfg.redis_url)
    run.setup_django()
    from django.db import connection

    from . import seed

    world = seed.create_world()
    seed.background_tokens(world, cfg.base_tokens, [c.pk for c in world.cc_clients])
    scenario = run.SCENARIOS[args.scenario]
    warm = seed.access_tokens(world, 200, world.cc_clients[0])
    lines = run.values_for(scenario, world, 3_000 * cfg.duration, warm)
    connection.close()
    values = None
    if lines:
        values = run.OUT_DIR / "values" / f"flame-{scenario.name}.tsv"
        values.parent.mkdir(parents=True, exist_ok=True)
        seed.write_values(values, lines)
    server = run.Server(cfg)
    server.start()
    out = run.OUT_DIR / f"flame-{scenario.name}.{'txt' if args.raw else 'svg'}"
    try:
        if not scenario.once:  # warm the caches and the connections first
            run.run_wrk(cfg, scenario, world.base_path, values, 2)
        load = threading.Thread(target=run.run_wrk, args=(cfg, scenario, world.base_path, values, cfg.duration))
        load.start()
        # One worker (they run the same code; the graph stays small), by function (--nolineno).
        subprocess.run([py_spy, "record", "--pid", str(server.worker_pids()[0]), "--nolineno", "--rate", str(args.rate),
                        "--duration", str(args.seconds), "--format", "raw" if args.raw else "flamegraph", "--output", str(out),
                        "--nonblocking", *([] if args.all_threads else ["--gil"])], check=True)
        load.join()
    finally:
        server.stop()
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
