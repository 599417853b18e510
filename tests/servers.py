"""Our server as real processes on loopback, for the end-to-end and multi-worker tests.

`server_command` starts it exactly as shipped, through `mcpauth_service.serve`, the one module that
says which web server runs and how.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
STARTUP_SECONDS = 60


def server_command(port: int, workers: int = 2, threads: int | None = None) -> list[str]:
    """The server as shipped (`python -m mcpauth_service.serve`, what `make run`, `make serve` and the
    Dockerfile run), on 127.0.0.1:`port` with `workers` processes (and `threads` each, if given)."""
    argv = [PYTHON, "-m", "mcpauth_service.serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    return argv + (["--threads", str(threads)] if threads else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll until `url` answers (any HTTP status); fail with the process log if it dies first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: process exited {process.returncode}\n{log.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {STARTUP_SECONDS}s\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop a server and everything it started. A server started in a session of its own
    (`start_server`) is stopped as a process group: killing granian's main process alone would
    leave its worker processes running, orphaned, after the test."""
    own_group = getattr(process, "own_session", False)
    signal_all = (lambda sig: os.killpg(process.pid, sig)) if own_group else process.send_signal
    if process.poll() is None:
        signal_all(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            signal_all(signal.SIGKILL)
            process.wait()
    if own_group:
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their main process
            os.killpg(process.pid, signal.SIGKILL)


def sibling_database_url(suffix: str) -> str:
    """DATABASE_URL's database with `suffix` appended: a PostgreSQL database of the test's own. Under
    pytest-xdist the worker's name follows (`_e2e_gw1`), as in pytest-django's `test_<name>_gw1`, so
    no worker ever drops or breaks another's."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        pytest.fail("this test needs DATABASE_URL pointing at PostgreSQL (see .ci/run)")
    parts = urlsplit(base)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix + (f"_{worker}" if worker else "")))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_env(tmp_path: Path, port: int, mode: str, database: str, tag: str) -> dict[str, str]:
    """The environment of a server on `port`: "embedded" runs on its own defaults, "production" on a
    fresh PostgreSQL database (`database`, a suffix) and Redis, with its own keys and cache prefix."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DIGEST_KEY", "KEY_ENCRYPTION_KEY")}
    env.update({"PUBLIC_URL": f"http://127.0.0.1:{port}", "DEBUG": "false", "LOG_LEVEL": "WARNING",
                "MCPAUTH_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    if mode == "production":
        database_url = sibling_database_url(database)
        recreate_database(database_url)
        env.update({"DATABASE_URL": database_url, "REDIS_URL": os.environ["REDIS_URL"],
                    "SECRET_KEY": f"{tag}-" + secrets.token_urlsafe(48),
                    "DIGEST_KEY": f"{tag}-digest-" + secrets.token_urlsafe(48),
                    "KEY_ENCRYPTION_KEY": f"{tag}-kek-" + secrets.token_urlsafe(48),
                    "CACHE_KEY_PREFIX": f"mcpauth-{tag}-" + secrets.token_hex(4)})
    return env


def manage(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    """`python manage.py ARGS` against the server's database; its stdout (fails the test on an error)."""
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_server(env: dict[str, str], port: int, log: Path, workers: int = 2,
                 threads: int | None = None) -> subprocess.Popen:
    """The server (`server_command`) with `env`, answering on `port` when this returns."""
    process = subprocess.Popen(server_command(port, workers, threads), cwd=ROOT, env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    process.own_session = True  # type: ignore[attr-defined]  # stop() signals the whole group
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process, log)
    except BaseException:
        stop(process)
        raise
    return process
