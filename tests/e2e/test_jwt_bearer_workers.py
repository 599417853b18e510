"""An ID-JAG's `jti` is spent once across web workers (RFC 7523 §3 item 7): the server as shipped
with two workers, embedded (SQLite and its cache table) and as production runs it (PostgreSQL and
Redis). The same assertion sent many times at once, each on a new connection, buys one token.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jwt import JWT

from tests.e2e.test_multiworker import basic, call, many
from tests.servers import free_port, manage, server_env, start_server, stop

pytestmark = pytest.mark.xdist_group("jwt_bearer_workers")  # its own servers, one worker

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP = "https://idp.workers.example"
ATTEMPTS = 8

SETUP = """
import json
from django.core.management import call_command
from oauth.trusted_issuers import IssuerSettings, trust
from projects.models import Project, User
from tests.oauth.grants.test_jwt_bearer import grant_client

call_command("migrate", interactive=False, verbosity=0)
owner = User.objects.create_operator("idjag@example.com", "correct horse battery staple")
project, _ = Project.objects.create_project(owner=owner, name="Workers", slug="workers",
                                            resources=["https://mcp.workers.example/mcp"])
agent = grant_client(project)
trust(project, IssuerSettings(issuer=IDP, jwks=JWKS), actor="test")
User.objects.create_end_user(project, "eve@workers.example")
print(json.dumps([agent.client_id, agent.plain_secret]))
"""


@contextlib.contextmanager
def running(tmp_path, mode: str, jwks: dict) -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    env = server_env(tmp_path, port, mode, "_idjag_workers", "idjag")
    script = f"IDP = {IDP!r}\nJWKS = {jwks!r}\n" + SETUP
    client = json.loads(manage(env, "shell", "-v", "0", "-c", script).strip().splitlines()[-1])
    process = start_server(env, port, tmp_path / "server.log")
    try:
        yield f"http://127.0.0.1:{port}/p/workers", client
    finally:
        stop(process)


@pytest.mark.parametrize("mode", ["embedded", pytest.param("production", marks=[pytest.mark.postgres,
                                                                              pytest.mark.redis])])
def test_a_replayed_jti_buys_one_token_across_two_workers(tmp_path, mode):
    key = JWK.generate(kty="EC", crv="P-256", kid="w1")
    with running(tmp_path, mode, {"keys": [key.export_public(as_dict=True)]}) as (issuer, client):
        now = int(time.time())
        claims = {"iss": IDP, "sub": "00u-eve", "aud": issuer, "client_id": client[0],
                  "resource": "https://mcp.workers.example/mcp", "jti": secrets.token_urlsafe(16),
                  "iat": now, "exp": now + 300, "email": "eve@workers.example"}
        token = JWT(header={"alg": "ES256", "kid": "w1", "typ": "oauth-id-jag+jwt"}, claims=claims)
        token.make_signed_token(key)
        form = {"grant_type": GRANT, "assertion": token.serialize()}

        answers = many(ATTEMPTS, lambda: call("POST", f"{issuer}/oauth/token", form=form, headers=basic(client)))

        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [400] * (ATTEMPTS - 1), answers
        assert {body["error"] for status, body in answers if status == 400} == {"invalid_grant"}
