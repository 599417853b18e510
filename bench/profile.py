"""CPU and queries per request, in process: where a hot path spends its time.

    python -m bench.profile                        # every scenario: CPU µs/request, queries/request
    python -m bench.profile --cprofile refresh     # and the top functions of one scenario
    valgrind --tool=callgrind --instr-atstart=no python -m bench.profile --only refresh --callgrind refresh
                                                   # instructions of one scenario's loop (see below)

Calls the WSGI application directly (no sockets, no load generator), so the numbers are CPU time
of this process (`time.process_time`) and hold up on a busy machine better than req/s under wrk.
Uses the bench database (recreated) and the same seeding as bench/run.py.

`--callgrind SCENARIO`, run under callgrind with instrumentation off at start, turns it on
(`callgrind_control -i on`) for that scenario's measured loop only: valgrind's closing
"Collected" line divided by `-n` is the instructions per request, a figure a busy machine does
not move. Under valgrind requests are ~50 times slower, so the process tier's 10 s TTL is
lifted for the run (else it reloads rows inside the loop) and codes are seeded with an hour to live.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from urllib.parse import quote

from . import run


def wsgi_environ(method: str, path: str, headers: dict[str, str], body: str, port: int) -> dict:
    data = body.encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port), "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": f"127.0.0.1:{port}", "wsgi.input": io.BytesIO(data), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(data)),
    }
    for name, value in headers.items():
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        elif value:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def call(app, environ: dict) -> tuple[int, bytes]:
    status = []

    def start_response(s, h, exc_info=None):
        status.append(int(s.split()[0]))

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return status[0], body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="requests per scenario")
    parser.add_argument("--cprofile", default="", help="scenario to profile with cProfile")
    parser.add_argument("--only", default="")
    parser.add_argument("--top", type=int, default=60, help="functions listed by cumulative CPU")
    parser.add_argument("--stats-file", default="", help="also write the cProfile stats there (pstats format)")
    parser.add_argument("--callgrind", default="", help="scenario whose loop callgrind instruments (see above)")
    args = parser.parse_args(argv)
    cfg = run.parse_args(["--port", "8097"])
    run.configure_environment(cfg)
    run.recreate_database(cfg.database_url)
    run.flush_redis(cfg.redis_url)
    run.setup_django()
    code_ttl = 60
    if args.callgrind:  # see the module docstring
        from projects.models import local_cache

        local_cache.ttl, code_ttl = 1e9, 3600

    from django.db import connection

    from mcpauth_service.wsgi import application as app  # what the server runs (infra.documents in front)

    from . import seed

    world = seed.create_world()
    seed.background_tokens(world, 1000, [c.pk for c in world.cc_clients])
    warm = seed.access_tokens(world, 50, world.cc_clients[0])
    only = [s for s in args.only.split(",") if s]
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    print(f"{'scenario':<20} {'CPU µs/req':>11} {'queries/req':>12}  status", flush=True)
    for name in run.ORDER:
        if only and name not in only and name != "hello":
            continue
        scenario = run.SCENARIOS[name]
        n = args.n
        if name == "authorization_code":  # as run.values_for, with the code lifetime chosen above
            uri = quote(seed.REDIRECT_URI, safe="")
            lines = [[c, v, uri, world.public_client.client_id]
                     for c, v in seed.authorization_codes(world, n + 5, code_ttl)]
            seed.analyze()
        else:
            lines = run.values_for(scenario, world, n + 5, warm)
        instrumented = name == args.callgrind

        def environ_for(i: int, lines=lines, scenario=scenario) -> dict:
            fields = lines[i % len(lines)] if lines else []
            path = scenario.path if scenario.origin else world.base_path + scenario.fill(scenario.path, fields)
            headers = {k: scenario.fill(v, fields) for k, v in scenario.headers.items()}
            return wsgi_environ(scenario.method, path, headers, scenario.fill(scenario.body, fields), cfg.port)

        # Warm: first calls import modules and fill caches (one-shot scenarios spend a value each).
        warmups = 0 if scenario.once else 20
        for i in range(warmups):
            call(app, environ_for(i))
        offset = 1 if scenario.once else 0
        environs = [environ_for(i + offset) for i in range(n)]
        queries.clear()
        statuses: dict[int, int] = {}
        profiler = cProfile.Profile(time.process_time) if name == args.cprofile else None  # CPU, not waits
        with connection.execute_wrapper(count):
            started = time.process_time()
            if profiler:
                profiler.enable()
            if instrumented:
                callgrind("on")
            for environ in environs:
                status, _ = call(app, environ)
                statuses[status] = statuses.get(status, 0) + 1
            if instrumented:
                callgrind("off")
            if profiler:
                profiler.disable()
            cpu = time.process_time() - started
        print(f"{name:<20} {cpu / n * 1e6:>11.0f} {len(queries) / n:>12.2f}  {statuses}", flush=True)
        if instrumented:
            print(f"callgrind: instructions per request = valgrind's 'Collected' / {n}", flush=True)
        if profiler:
            if args.stats_file:
                profiler.dump_stats(args.stats_file)
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
            pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
            print(stream.getvalue())
            last = max(1, round(len(queries) / n))
            print(f"queries of the last request (about {last}; BEGIN/COMMIT are not statements here):")
            for sql in queries[-last:]:
                print("   ", sql[:160])
    return 0


def callgrind(switch: str) -> None:
    """Turn callgrind's instrumentation of this process on or off."""
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
