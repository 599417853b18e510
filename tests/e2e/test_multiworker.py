"""One truth across worker processes: the real server with two workers, as `make run` starts it
(embedded: SQLite and its cache table, no Redis) and as production runs it (PostgreSQL + Redis).

Every request is a new connection (urllib sends `Connection: close`; sync workers close anyway),
several at a time, so both workers answer and both have warmed whatever they keep in process before
each change. After the change, every answer from either worker must agree with it:
a revoked token is never active, a spent code never buys a token, a settings change is seen by
every next request, and a rate limit of N counts the requests of both workers together.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from tests.servers import free_port, manage, server_env, start_server, stop

# One xdist worker runs the module: each mode's server is started once.
pytestmark = pytest.mark.xdist_group("multiworker")
LIMIT = 7  # open registrations per address per minute, set on the project before the burst
PARALLEL = 4

# Made in one `manage.py shell` run (one Django start-up less than separate commands): the
# migrated database, an operator with an API token, a project, a confidential client_credentials
# client, a public client with a code waiting to be redeemed, and a client whose tokens the operator
# will revoke.
SETUP = """
import json
from datetime import timedelta
from django.core.management import call_command
from django.utils import timezone
from dashboard.models import OperatorToken
from oauth.models import Application, Grant
from projects import secrets
from projects.models import Project, User
from tests.conftest import _confidential_client, _public_client

call_command("migrate", interactive=False, verbosity=0)
owner = User.objects.create_operator("mw@example.com", "correct horse battery staple")
project, registration_secret = Project.objects.create_project(
    owner=owner, name="Multi", slug="multi", resources=["https://mcp.multi.example/mcp"])
backend = _confidential_client(project)
bulk = _confidential_client(project, name="Revoked in bulk")
public = _public_client(project)
person = User.objects.create_end_user(project, "eve@multi.example", "correct horse battery staple")
Grant.objects.create(application=public, user=person, code=CODE, expires=timezone.now() + timedelta(seconds=60),
                     redirect_uri="http://127.0.0.1/callback", scope="mcp:tools", code_challenge=CHALLENGE,
                     code_challenge_method="S256", resource=["https://mcp.multi.example/mcp"])
print(json.dumps({"secret": registration_secret, "operator_token": OperatorToken.issue(owner, "mw")[1],
                  "backend": [backend.client_id, backend.plain_secret], "bulk": [bulk.client_id, bulk.plain_secret],
                  "public": public.client_id}))
"""


@dataclass
class Server:
    url: str
    secret: str
    operator_token: str
    backend: list[str]
    bulk: list[str]
    public: str
    code: str
    verifier: str

    @property
    def issuer(self) -> str:
        return f"{self.url}/p/multi"


def call(method: str, url: str, *, form: dict | None = None, body: dict | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    """One request on a new connection; (status, JSON body)."""
    data, headers = None, dict(headers or {})
    if form is not None:
        data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
    elif body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def many(count: int, request) -> list:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda _: request(), range(count)))


def basic(client: list[str]) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(":".join(client).encode()).decode()}


def client_credentials_token(server: Server, client: list[str]) -> str:
    status, body = call("POST", f"{server.issuer}/oauth/token", form={"grant_type": "client_credentials"},
                        headers=basic(client))
    assert status == 200, body
    return body["access_token"]


def introspect(server: Server, token: str) -> dict:
    status, body = call("POST", f"{server.issuer}/oauth/introspect", form={"token": token},
                        headers={"Authorization": f"Bearer {server.secret}"})
    assert status == 200, body
    return body


def redeem(server: Server) -> tuple[int, dict]:
    return call("POST", f"{server.issuer}/oauth/token", form={
        "grant_type": "authorization_code", "code": server.code, "code_verifier": server.verifier,
        "redirect_uri": "http://127.0.0.1/callback", "client_id": server.public})


def register(server: Server) -> int:
    return call("POST", f"{server.issuer}/api/oauth/register", body={
        "client_name": "Burst", "redirect_uris": ["http://127.0.0.1/callback"]})[0]


def start(tmp_path, mode: str) -> Iterator[Server]:
    port = free_port()
    env = server_env(tmp_path, port, mode, "_multiworker", "mw")
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = secrets.token_urlsafe(32)
    made = json.loads(manage(env, "shell", "-v", "0", "-c",
                             f"CODE = {code!r}\nCHALLENGE = {challenge!r}\n" + SETUP).strip().splitlines()[-1])
    process = start_server(env, port, tmp_path / "server.log")
    try:
        yield Server(url=f"http://127.0.0.1:{port}", code=code, verifier=verifier, **made)
    finally:
        stop(process)


@pytest.fixture(scope="module", params=["embedded", pytest.param("production", marks=[pytest.mark.postgres,
                                                                                      pytest.mark.redis])])
def server(request, tmp_path_factory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp(request.param), request.param)


def test_a_revoked_token_is_inactive_on_every_worker(server):
    token = client_credentials_token(server, server.backend)
    assert all(introspect(server, token)["active"] for _ in range(10))  # cached, and each worker warmed

    status, _ = call("POST", f"{server.issuer}/oauth/revoke", form={"token": token}, headers=basic(server.backend))

    assert status == 200
    assert many(100, lambda: introspect(server, token)) == [{"active": False}] * 100


def test_tokens_revoked_in_bulk_are_inactive_on_every_worker(server):
    doomed = [client_credentials_token(server, server.bulk) for _ in range(3)]
    assert all(introspect(server, token)["active"] for token in doomed for _ in range(4))
    clients = call("GET", f"{server.url}/api/v1/projects/multi/clients",
                   headers={"Authorization": f"Bearer {server.operator_token}"})[1]
    pk = next(c["id"] for c in clients if c["client_id"] == server.bulk[0])

    status, _ = call("POST", f"{server.url}/api/v1/projects/multi/clients/{pk}/revoke-tokens",
                     headers={"Authorization": f"Bearer {server.operator_token}"})

    assert status == 200
    assert many(100, lambda: introspect(server, doomed[len(doomed) - 1])) == [{"active": False}] * 100
    assert [introspect(server, token) for token in doomed] == [{"active": False}] * 3


def test_a_spent_code_never_buys_a_second_token(server):
    status, first = redeem(server)
    assert status == 200

    replays = many(50, lambda: redeem(server))

    assert {status for status, _ in replays} == {400}
    assert {body["error"] for _, body in replays} == {"invalid_grant"}
    assert not any("access_token" in body for _, body in replays)
    assert introspect(server, first["access_token"]) == {"active": False}  # the replay revoked what it issued


def test_a_settings_change_is_seen_by_every_next_request(server):
    before = many(10, lambda: client_credentials_token(server, server.backend))
    assert all(token.startswith("mcpat_") for token in before)

    status, settings = call("PATCH", f"{server.url}/api/v1/projects/multi", body={"token_format": "jwt"},
                            headers={"Authorization": f"Bearer {server.operator_token}"})

    assert status == 200 and settings["token_format"] == "jwt"
    after = many(50, lambda: client_credentials_token(server, server.backend))
    assert [token.count(".") for token in after] == [2] * 50  # every one a JWT, from either worker


def test_a_rate_limit_counts_both_workers_together(server):
    if time.time() % 60 > 50:  # a fixed one-minute window: start the burst inside one window
        time.sleep(61 - time.time() % 60)

    status, _ = call("PATCH", f"{server.url}/api/v1/projects/multi",
                     body={"rate_limits": {"register:ip": f"{LIMIT}/1m"}},
                     headers={"Authorization": f"Bearer {server.operator_token}"})
    assert status == 200
    statuses = many(3 * LIMIT, lambda: register(server))

    assert sorted(statuses) == [201] * LIMIT + [429] * (2 * LIMIT)
