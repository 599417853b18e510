"""The server as shipped keeps answering other clients while a few clients are slow.

A real server (`python -m mcpauth_service.serve`, the command make run, make serve and Docker use)
with one worker of four threads, in the embedded default on its own var/ folder. Twelve connections
send their headers one byte a second (three times the threads there are) and two send a body
shorter than their Content-Length; a normal client meanwhile asks for the demo issuer's metadata.
The only bound is generous: every probe must be answered within ten seconds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.slowclients import attack

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DIGEST_KEY", "KEY_ENCRYPTION_KEY"}}
    env.update({"MCPAUTH_VAR_DIR": str(tmp_path / "var"), "PUBLIC_URL": f"http://127.0.0.1:{port}",
                "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "mcpauth_service.settings"})
    for args in (["migrate", "--noinput", "-v", "0"], ["bootstrapdemo", "--json"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    demo = json.loads(done.stdout)
    log = tmp_path / "server.log"
    process = subprocess.Popen([sys.executable, "-m", "mcpauth_service.serve", "--port", str(port),
                                "--workers", "1", "--threads", "4"],
                               cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not answer /healthz within 60 s"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        yield port, demo
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_it_answers_a_normal_client_while_slow_clients_hold_connections(server):
    port, demo = server
    issuer_path = urlsplit(demo["issuer"]).path
    outcome = attack(port, slow_headers=12, short_bodies=2, seconds=6, probe_every=0.5, probe_timeout=10,
                     probe_path=issuer_path + "/.well-known/oauth-authorization-server",
                     body_path=issuer_path + "/oauth/token")
    assert outcome.slow_connections_opened == 14
    assert outcome.probes >= 1
    assert outcome.answered == outcome.probes, outcome.summary()
