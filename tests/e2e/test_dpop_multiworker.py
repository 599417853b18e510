"""DPoP across worker processes (RFC 9449 §11.1, §8): the real server with two workers, embedded
(SQLite and its cache table) and production (PostgreSQL + Redis), as in tests/e2e/test_multiworker.py.

A proof is accepted once, whichever worker sees it first and however many workers it is replayed
to at the same moment; a nonce one worker hands out is good at every worker.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.dpop_support import DpopKey
from tests.e2e.test_multiworker import Server, basic, call, many, start

# Its servers use test_multiworker's sibling database: the same worker, one module after the other.
pytestmark = pytest.mark.xdist_group("multiworker")
REPLAYS = 24


@pytest.fixture(scope="module", params=["embedded", pytest.param("production", marks=[pytest.mark.postgres,
                                                                                      pytest.mark.redis])])
def server(request, tmp_path_factory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp(f"dpop-{request.param}"), request.param)


def set_policy(server: Server, **policy) -> None:
    status, body = call("PATCH", f"{server.url}/api/v1/projects/multi", body=policy,
                        headers={"Authorization": f"Bearer {server.operator_token}"})
    assert status == 200, body


def token_request(server: Server, proof: str) -> tuple[int, dict, str | None]:
    """client_credentials with a DPoP proof, on a new connection: (status, body, DPoP-Nonce)."""
    request = urllib.request.Request(
        f"{server.issuer}/oauth/token", data=urlencode({"grant_type": "client_credentials"}).encode(),
        headers={**basic(server.backend), "DPoP": proof, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers.get("DPoP-Nonce")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers.get("DPoP-Nonce")


def test_a_proof_replayed_to_every_worker_at_once_buys_one_token(server):
    set_policy(server, dpop="allowed", dpop_nonce=False)
    key = DpopKey()
    proof = key.proof("POST", f"{server.issuer}/oauth/token")

    answers = many(REPLAYS, lambda: token_request(server, proof))

    accepted = [body for status, body, _ in answers if status == 200]
    assert len(accepted) == 1 and accepted[0]["token_type"] == "DPoP"
    assert sorted((status, body["error"]) for status, body, _ in answers if status != 200) == \
        [(400, "invalid_dpop_proof")] * (REPLAYS - 1)
    introspected = call("POST", f"{server.issuer}/oauth/introspect", form={"token": accepted[0]["access_token"]},
                        headers={"Authorization": f"Bearer {server.secret}"})[1]
    assert introspected["cnf"] == {"jkt": key.jkt}


def test_a_nonce_from_one_worker_is_good_at_every_worker(server):
    set_policy(server, dpop="allowed", dpop_nonce=True)
    key = DpopKey()
    url = f"{server.issuer}/oauth/token"
    status, body, nonce = token_request(server, key.proof("POST", url))
    assert (status, body["error"]) == (400, "use_dpop_nonce") and nonce

    answers = many(12, lambda: token_request(server, key.proof("POST", url, nonce=nonce)))

    assert [(status, body["token_type"]) for status, body, _ in answers] == [(200, "DPoP")] * 12
    assert all(fresh for _, _, fresh in answers)  # and the nonce to use next, from whichever worker
