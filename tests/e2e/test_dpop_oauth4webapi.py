"""DPoP (RFC 9449) with a client library we did not write: panva's oauth4webapi (npm, unmodified) under
Node against our issuer as shipped, and a resource server that checks DPoP with `mcpauth_rs`.

The project requires DPoP for public clients and asks for nonces, so the library goes through
`use_dpop_nonce` at the token endpoint and at the resource server, and its own proofs (`htm`,
`htu`, `ath`, `nonce`, its key) must pass every check on both sides.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mcpauth_rs import ResourceServer, TokenRejected
from tests.servers import free_port

from .conftest import PASSWORD, REDIRECT_URI, introspect
from .node import converse, node_script
from .user_agent import EndUser

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("e2e")]  # one issuer (tests/e2e/conftest.py)

JS = Path(__file__).resolve().parent / "dpop_js"


def protected_resource(rs: ResourceServer, port: int) -> tuple[ThreadingHTTPServer, list[tuple[int, str]]]:
    """A tiny resource server on loopback: 200 with the token's client and key, or mcpauth_rs's refusal."""
    answers: list[tuple[int, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                verified = rs.verify_request(self.headers.get("Authorization"), method="POST", url=rs.resource,
                                             dpop=self.headers.get("DPoP"))
                status, body, headers = 200, {"client_id": verified.client_id, "jkt": verified.jkt}, {}
            except TokenRejected as exc:
                status, body, headers = exc.status, {"error": exc.error}, rs.challenge(exc)
            answers.append((status, body.get("error", "")))
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, answers


def as_bearer(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"{}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("WWW-Authenticate", "")


def test_oauth4webapi_gets_dpop_bound_tokens_that_mcpauth_rs_accepts(issuer):
    slug = "e2e-dpop"
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    project = issuer.create_project(slug, [resource])
    issuer.manage("setproject", slug, "--set", "dpop=required", "--set", "dpop_nonce=true")
    email = f"eve@{slug}.example"
    issuer.create_end_user(slug, email)
    secret = issuer.manage("createsecret", "--project", slug, "--name", "RS", "--permissions", "introspect")["secret"]
    backend = issuer.manage("createclient", "--project", slug, "--name", "Backend", "--grant", "client_credentials")
    public = issuer.manage("createclient", "--project", slug, "--name", "CLI", "--redirect-uri", REDIRECT_URI)
    rs = ResourceServer(project["issuer"], resource, introspection_secret=secret, cache_seconds=0, dpop=True,
                        dpop_nonce_secret="e2e-resource-server-nonce-secret")
    server, answers = protected_resource(rs, port)
    try:
        done = converse(node_script(JS, "oauth4webapi", "client.mjs", json.dumps({
            "issuer": project["issuer"], "resource": resource, "protected": resource,
            "confidential": {"clientId": backend["client_id"], "clientSecret": backend["client_secret"]},
            "public": {"clientId": public["client_id"], "redirectUri": REDIRECT_URI},
        })), EndUser(email, PASSWORD), "oauth4webapi client")
        bearer_status, challenge = as_bearer(resource, done["clientCredentials"]["accessToken"])
    finally:
        server.shutdown()

    assert "ES256" in done["algs"]
    machine, person = done["clientCredentials"], done["authorizationCode"]
    assert machine["tokenType"].lower() == "dpop" and machine["resource"]["status"] == 200
    assert machine["resource"]["body"]["client_id"] == backend["client_id"]
    assert (person["tokenType"].lower(), person["refreshedTokenType"].lower()) == ("dpop", "dpop")
    assert person["resource"]["status"] == 200 and person["resource"]["body"]["client_id"] == public["client_id"]
    # The issuer bound each token to the key the library signed its proofs with.
    for flow in (machine, person):
        assert introspect(project["issuer"], secret, flow["accessToken"])["cnf"] == {"jkt": flow["resource"]["body"]["jkt"]}
    bound = issuer.shell(
        "from oauth.models import RefreshToken; from oauth.tokens.issue import checksum; "
        f"print(RefreshToken.objects.get(token_checksum=checksum({person['refreshToken']!r})).dpop_jkt)")
    assert bound == person["resource"]["body"]["jkt"]
    # The library met our nonces at the resource server too, and a bound token alone is refused there.
    assert (401, "use_dpop_nonce") in answers
    assert bearer_status == 401 and challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge
