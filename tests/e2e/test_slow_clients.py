"""The server as shipped keeps answering other clients while a few clients are slow.

A real server (`python -m mcpauth_service.serve`, the command make run, make serve and Docker use)
with one worker of four threads, in the embedded default on its own var/ folder. Twelve connections
send their headers one byte a second (three times the threads there are) and two send a body
shorter than their Content-Length; a normal client meanwhile asks for the demo issuer's metadata.
The only bound is generous: every probe must be answered within ten seconds.

What it shows: headers are read by granian without a Python thread (twelve slowloris connections on
four threads cost nothing), and fewer stalled bodies than threads leave threads to answer. It does
not claim more: a body is read by the thread that runs the request, so as many stalled bodies as a
worker has threads stall that worker (measured: ten of them here, and no probe was answered) until
the clients give up; the reverse proxy's body buffering is what protects against that
(docs/deployment.md). granian's --backpressure, which bounds the connections a worker serves, stays
at its default: at one per thread the slowloris connections alone stalled this server.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest

from bench.slowclients import attack
from tests.servers import free_port, manage, start_server, stop


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DIGEST_KEY", "KEY_ENCRYPTION_KEY"}}
    env.update({"MCPAUTH_VAR_DIR": str(tmp_path / "var"), "PUBLIC_URL": f"http://127.0.0.1:{port}",
                "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "mcpauth_service.settings"})
    manage(env, "migrate", "--noinput", "-v", "0")
    demo = json.loads(manage(env, "bootstrapdemo", "--json"))
    process = start_server(env, port, tmp_path / "server.log", workers=1, threads=4)
    try:
        yield port, demo
    finally:
        stop(process)


def test_it_answers_a_normal_client_while_slow_clients_hold_connections(server):
    port, demo = server
    issuer_path = urlsplit(demo["issuer"]).path
    outcome = attack(port, slow_headers=12, short_bodies=2, seconds=6, probe_every=0.5, probe_timeout=10,
                     probe_path=issuer_path + "/.well-known/oauth-authorization-server",
                     body_path=issuer_path + "/oauth/token")
    assert outcome.slow_connections_opened == 14
    assert outcome.probes >= 1
    assert outcome.answered == outcome.probes, outcome.summary()
