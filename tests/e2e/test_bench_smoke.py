"""`python -m bench.run --quick` measures every endpoint on our server and on node oidc-provider.

A smoke run (one round of 2-second runs, ~90 s on two CPUs; marker `bench`, left out of the
default run): both servers start, every scenario's probe is answered correctly on both, and the
results file holds req/s, p50, p99 and the ratio for each endpoint. Nothing about speed is asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import compare, peer
from tests.servers import ROOT, free_port, sibling_database_url

pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def peer_installed():
    if not peer.installed():
        subprocess.run(["npm", "ci", "--prefix", str(peer.HERE), "--no-audit", "--no-fund", "--loglevel=error"],
                       check=True, timeout=300)


def test_it_measures_every_endpoint_on_both_servers(tmp_path, peer_installed):
    env = {**os.environ, "BENCH_DATABASE_URL": sibling_database_url("_bench_smoke"),
           "BENCH_REDIS_URL": os.environ["REDIS_URL"], "BENCH_OUT_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--port", str(free_port()),
         "--peer-port", str(free_port()), "--peer-admin-port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads((tmp_path / "results.json").read_text())
    (only_round,) = report["rounds"]
    assert list(only_round["endpoints"]) == compare.COMPARED
    for name, pair in only_round["endpoints"].items():
        for side in ("ours", "peer"):  # every answer right (a run cut short on a busy machine is still a run)
            assert pair[side]["requests"] > 0, (name, side, pair[side])
            assert pair[side]["unexpected"] <= 0.01 * pair[side]["requests"], (name, side, pair[side])
            assert pair[side]["cpu_us_per_request"] > 0  # the server's own CPU was read
        assert pair["ours"]["rps"] > 0 and pair["peer"]["rps"] > 0
    assert set(report["summary"]) == set(compare.COMPARED)
    assert report["environment"]["peer"] == peer.version()
