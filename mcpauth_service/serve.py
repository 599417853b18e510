"""The web server as shipped, written in one place.

`make run`, `make serve`, the Dockerfile, docker-compose, `make bench` and the tests' server fixtures
all start the service through this module, so what is measured and tested is what runs in production:

    python -m mcpauth_service.serve [--host H] [--port P] [--access-log]

It replaces itself (exec) with the server, so signals reach the server directly. The default is
granian's WSGI server (docs/performance.md, "Process model"): HTTP/1.1 keep-alive, request headers
read in Rust before a Python thread is involved, so a client slow to send its headers costs no worker
thread. A request's body is read by the thread that runs it: a client that stalls in its body holds
that thread until it finishes or the connection drops, so a deployment that faces the Internet puts a
proxy that buffers bodies in front (docs/deployment.md; tests/e2e/test_slow_clients.py).

Environment (all optional):

    HOST / PORT      where to listen (default 127.0.0.1:8000)
    WEB_SERVER       granian (default), or gthread / sync for gunicorn (kept for comparison)
    WEB_WORKERS      worker processes (default: the CPU count, at least 2)
    WEB_THREADS      threads per worker that run Django (default 8)
    PROMETHEUS_MULTIPROC_DIR  where the workers keep their metrics (default var/prometheus; emptied
                     at start: docs/operations.md)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

APP = "mcpauth_service.wsgi:application"
SERVERS = ("granian", "gthread", "sync")
DEFAULT_SERVER = "granian"
DEFAULT_THREADS = 8
# granian's --backpressure is left at its default (1024 / workers): it bounds the *connections* a
# worker serves, not its queued requests. At a few per thread, keep-alive connections beyond it
# are never answered (measured: with 2, a third keep-alive client times out), and one slowloris
# connection per thread stalls the worker; under wrk that shows as a fine p99 of the connections
# that are served (docs/performance.md, "Process model").
# How long a client may take to send its request headers (granian: milliseconds; gunicorn: its
# worker timeout covers a whole request). Slow clients wait without holding a Python thread.
HEADER_READ_TIMEOUT_MS = 30_000


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


def _positive(name: str, value: str | int | None, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a positive integer, not {value!r}") from None
    if number < 1:
        raise SystemExit(f"{name} must be a positive integer, not {value!r}")
    return number


def command(*, host: str | None = None, port: int | str | None = None, server: str | None = None,
            workers: int | None = None, threads: int | None = None, access_log: bool = False,
            python: str | None = None) -> list[str]:
    """The server's argv. Unset arguments come from the environment, then from the defaults."""
    env = os.environ
    host = host or env.get("HOST") or "127.0.0.1"
    port = _positive("PORT", port if port is not None else env.get("PORT"), 8000)
    server = server or env.get("WEB_SERVER") or DEFAULT_SERVER
    if server not in SERVERS:
        raise SystemExit(f"WEB_SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
    workers = _positive("WEB_WORKERS", workers if workers is not None else env.get("WEB_WORKERS"), default_workers())
    threads = _positive("WEB_THREADS", threads if threads is not None else env.get("WEB_THREADS"), DEFAULT_THREADS)
    bindir = Path(python or sys.executable).parent
    if server == "granian":
        argv = [str(bindir / "granian"), "--interface", "wsgi", "--host", host, "--port", str(port),
                "--workers", str(workers), "--blocking-threads", str(threads),
                # Threads hold database connections: keep them for as long as granian allows.
                "--blocking-threads-idle-timeout", "600",
                "--http", "1", "--no-ws", "--http1-header-read-timeout", str(HEADER_READ_TIMEOUT_MS),
                "--respawn-failed-workers", "--workers-kill-timeout", "30", "--log-level", "warning"]
        if access_log:
            argv.append("--access-log")
        return argv + [APP]
    argv = [str(bindir / "gunicorn"), APP, "--bind", f"{host}:{port}", "--workers", str(workers),
            "--worker-class", server, "--log-level", "warning", "--error-logfile", "-"]
    if server == "gthread":
        argv += ["--threads", str(threads), "--keep-alive", "5"]
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv


def refuse_if_unsafe() -> None:
    """The system checks, once, before any worker starts: a deployment that fails one (a missing
    DIGEST_KEY, a weak SECRET_KEY...) exits with the reason instead of workers failing in a loop."""
    import django
    from django.core import checks

    django.setup()
    errors = [m for m in checks.run_checks() if m.is_serious()]
    if errors:
        raise SystemExit("refusing to start:\n" + "\n".join(str(m) for m in errors))


def prepare_metrics() -> None:
    """prometheus-client's multiprocess mode for the workers (infra/metrics.py): its directory,
    emptied of the last run's values, in the environment the workers inherit."""
    from django.conf import settings

    from infra.metrics import prepare_multiprocess_dir

    prepare_multiprocess_dir(settings.VAR_DIR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host")
    parser.add_argument("--port")
    parser.add_argument("--server", choices=SERVERS)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--access-log", action="store_true", help="log every request to stdout")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpauth_service.settings")
    argv = command(host=args.host, port=args.port, server=args.server, workers=args.workers,
                   threads=args.threads, access_log=args.access_log)
    os.chdir(Path(__file__).resolve().parent.parent)  # the application is imported from the project root
    refuse_if_unsafe()
    prepare_metrics()
    sys.stdout.flush()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
