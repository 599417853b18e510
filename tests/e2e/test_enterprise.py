"""Enterprise-Managed Authorization end to end: the official `mcp` Python SDK's
`IdentityAssertionOAuthProvider` (unmodified) against our issuer and `examples/mcp_server.py`, all
real processes. A test IdP signs ID-JAGs with its own key and serves its JWKS over TLS; the
operator trusts it with `trustissuer` and registers the client with `createclient`, as a script
would. The SDK: 401 -> RFC 8414 metadata of the configured issuer -> jwt-bearer grant with the
ID-JAG its `assertion_provider` returns -> tools/call; no browser, no consent, no refresh token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jwt import JWT
from mcp.client import Client
from mcp.client.auth import OAuthTokenError
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from tests.browser import run_async

from .conftest import introspect, raw_mcp_post
from .node import NODE_SECONDS
from .test_python_sdk import MemoryStorage

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("e2e")]  # one issuer (tests/e2e/conftest.py)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


XAA_TS = Path(__file__).resolve().parent / "ts-xaa"


class EnterpriseIdp:
    """A company's identity provider, as far as our issuer can tell: an issuer URL, a signing key
    whose public half is served as a JWKS, and ID-JAGs for one person (RFC 7519 claims, typ
    `oauth-id-jag+jwt`)."""

    def __init__(self, https_documents, name: str, email: str, scope: str | None = None) -> None:
        self.key = JWK.generate(kty="RSA", size=2048, kid=f"{name}-1")
        self.issuer = f"https://{name}.idp.example"
        self.jwks_uri = https_documents.serve(f"/{name}/jwks", {"keys": [self.key.export_public(as_dict=True)]})
        self.email, self.scope, self.client_id = email, scope, ""
        self.issued: list[dict] = []

    async def assertion_provider(self, audience: str, resource: str) -> str:
        """The SDK's callback: (our issuer, the MCP server's resource) -> a fresh ID-JAG."""
        return self.id_jag(audience, resource)

    def id_jag(self, audience: str, resource: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "00u-eve", "aud": audience, "resource": resource,
                  "client_id": self.client_id, "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 300,
                  "email": self.email, **({"scope": self.scope} if self.scope else {})}
        token = JWT(header={"alg": "RS256", "kid": self.key.get("kid"), "typ": "oauth-id-jag+jwt"}, claims=claims)
        token.make_signed_token(self.key)
        self.issued.append(claims)
        return token.serialize()


class EnterpriseClient:
    """An MCP client app configured for one issuer, logging every HTTP exchange it makes."""

    def __init__(self, server_url: str, issuer: str, client: dict, idp: EnterpriseIdp, scope: str | None = None):
        self.storage = MemoryStorage()
        self.log: list[tuple[str, str, int, dict]] = []
        self.provider = IdentityAssertionOAuthProvider(
            server_url=server_url, storage=self.storage, client_id=client["client_id"],
            client_secret=client["client_secret"], issuer=issuer, assertion_provider=idp.assertion_provider,
            scope=scope)
        self.server_url = server_url

    async def _record(self, response: httpx2.Response) -> None:
        request = response.request
        form = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        await response.aread()
        self.log.append((request.method, str(request.url), response.status_code, form))

    async def _call(self, tool: str, arguments: dict) -> dict:
        http = httpx2.AsyncClient(auth=self.provider, timeout=30, event_hooks={"response": [self._record]})
        async with http, Client(streamable_http_client(self.server_url, http_client=http)) as client:
            result = await client.call_tool(tool, arguments)
        assert not result.is_error, result
        return result.structured_content if result.structured_content is not None else json.loads(
            result.content[0].text)

    def call(self, tool: str, arguments: dict | None = None) -> dict:
        return run_async(self._call, tool, arguments or {})

    def token_requests(self) -> list[tuple[int, dict]]:
        return [(status, form) for method, url, status, form in self.log
                if method == "POST" and urlsplit(url).path.endswith("/oauth/token")]


def enterprise_setup(issuer, deployment, https_documents, *, scope: str | None = None):
    idp = EnterpriseIdp(https_documents, deployment.slug, deployment.email, scope)
    trusted = issuer.manage("trustissuer", "--project", deployment.slug, "--issuer", idp.issuer,
                            "--jwks-uri", idp.jwks_uri)
    client = issuer.manage("createclient", "--project", deployment.slug, "--name", "Enterprise agent",
                           "--confidential", "--grant", GRANT)
    idp.client_id = client["client_id"]
    return idp, client, trusted


def test_the_sdk_gets_a_token_for_an_id_jag_and_calls_a_tool(issuer, deployment_factory, https_documents):
    deployment = deployment_factory("xaa")
    discovery = httpx2.get(f"{deployment.issuer}/.well-known/oauth-authorization-server").json()
    assert GRANT not in discovery["grant_types_supported"]
    idp, client, trusted = enterprise_setup(issuer, deployment, https_documents)
    assert isinstance(trusted["id"], int)
    discovery = httpx2.get(f"{deployment.issuer}/.well-known/oauth-authorization-server").json()
    assert GRANT in discovery["grant_types_supported"]
    assert discovery["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]

    app = EnterpriseClient(deployment.server_url, deployment.issuer, client, idp)
    me = app.call("whoami")

    # Our end user (linked by the IdP's verified email), the client, the MCP server as audience.
    assert me["subject"] == deployment.subject and me["client_id"] == client["client_id"]
    assert me["resource"] == deployment.server_url and "mcp:tools" in me["scopes"]
    [(status, form)] = app.token_requests()
    assert status == 200 and form["grant_type"] == GRANT and form["resource"] == deployment.server_url
    assert idp.issued[0]["aud"] == deployment.issuer and idp.issued[0]["resource"] == deployment.server_url
    tokens = app.storage.tokens
    assert tokens.refresh_token is None  # the client presents a fresh ID-JAG instead
    answer = introspect(deployment.issuer, deployment.introspection_secret, tokens.access_token)
    assert answer["active"] is True and answer["assertion_iss"] == idp.issuer and answer["sub"] == deployment.subject

    # The same ID-JAG presented again (a replay) is refused.
    replay = httpx2.post(f"{deployment.issuer}/oauth/token", data={
        "grant_type": GRANT, "assertion": _last_assertion(app), "client_id": client["client_id"],
        "client_secret": client["client_secret"]})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert raw_mcp_post(deployment.server_url, tokens.access_token).status_code == 200


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _last_assertion(app: EnterpriseClient) -> str:
    return [form for _, form in app.token_requests()][-1]["assertion"]


def test_the_sdk_is_refused_cleanly_when_the_idp_does_not_grant_the_scope(issuer, deployment_factory,
                                                                         https_documents):
    deployment = deployment_factory("xaa-scope")
    idp, client, _ = enterprise_setup(issuer, deployment, https_documents, scope="mcp:resources")
    app = EnterpriseClient(deployment.server_url, deployment.issuer, client, idp, scope="mcp:tools")

    with pytest.raises(BaseException) as raised:
        anyio.run(app._call, "whoami", {})

    [refused] = _leaves(raised.value)  # the SDK's transport raises it inside a task group
    assert isinstance(refused, OAuthTokenError)
    assert "invalid_scope" in str(refused) and "does not grant scope mcp:tools" in str(refused)
    assert [status for status, _ in app.token_requests()] == [400]


def test_the_typescript_sdks_cross_app_access_provider_gets_a_token(issuer, deployment_factory, https_documents):
    """The TypeScript SDK v2 client's CrossAppAccessProvider (SEP-990): PRM discovery, our metadata,
    the ID-JAG from its `assertion` callback (answered here, as the company IdP), the jwt-bearer
    grant with client_secret_basic, then a tool call."""
    node = shutil.which("node")
    if node is None or not (XAA_TS / "node_modules" / "@modelcontextprotocol" / "client").is_dir():
        pytest.fail("Node 20 and `npm ci --prefix tests/e2e/ts-xaa` are needed (make test does both)")
    deployment = deployment_factory("xaa-ts")
    idp, client, _ = enterprise_setup(issuer, deployment, https_documents)
    process = subprocess.Popen([node, str(XAA_TS / "xaa_client.mjs"), deployment.server_url, deployment.issuer,
                                client["client_id"], client["client_secret"]], cwd=XAA_TS, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(NODE_SECONDS, process.kill)
    watchdog.start()
    try:
        asked, final = [], {}
        for line in process.stdout:
            message = json.loads(line)
            if "assertion" in message:
                asked.append(message["assertion"])
                process.stdin.write(json.dumps({"id_jag": idp.id_jag(**{k: message["assertion"][k]
                                                                         for k in ("audience", "resource")})}) + "\n")
                process.stdin.flush()
            else:
                final = message
                break
        process.wait(timeout=30)
    finally:
        watchdog.cancel()
    assert "done" in final, (final, process.stderr.read())
    assert asked == [{"audience": deployment.issuer, "resource": deployment.server_url, "scope": asked[0]["scope"]}]
    me = final["done"]
    assert me["subject"] == deployment.subject and me["client_id"] == client["client_id"]
    assert me["resource"] == deployment.server_url
    grants = [e for e in final["log"] if e["form"].get("grant_type") == GRANT]
    assert [e["status"] for e in grants] == [200] and grants[0]["url"] == f"{deployment.issuer}/oauth/token"
    assert final["tokens"]["refresh_token"] is None
