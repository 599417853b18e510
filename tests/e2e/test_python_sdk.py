"""The official `mcp` Python SDK client (OAuthClientProvider, unmodified) against our issuer and
`examples/mcp_server.py`, both real processes: 401 -> RFC 9728 metadata -> RFC 8414 path-inserted
discovery -> registration (open DCR, or CIMD) -> authorization with PKCE and `resource` -> hosted
sign-in and consent -> token -> tools/call -> refresh with rotation -> revocation -> refused ->
introspection inactive. Plus: a token for another resource of the same project is refused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.browser import run_async

from .conftest import ACCESS_TOKEN_TTL, PASSWORD, REDIRECT_URI, Deployment, introspect, raw_mcp_post
from .user_agent import EndUser

# Real processes share PostgreSQL and Redis with the test run.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("e2e")]  # one issuer (tests/e2e/conftest.py)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")



# --- the client side -------------------------------------------------------------------------------
class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    form: dict[str, str]


@dataclass
class PythonClient:
    """One MCP client app: the SDK's provider, its storage, a person at the browser, and a log of
    every HTTP exchange the SDK made (an httpx event hook: it observes, it changes nothing)."""

    server_url: str
    user: EndUser
    client_metadata_url: str | None = None
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    log: list[Exchange] = field(default_factory=list)
    authorization_urls: list[str] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        metadata = OAuthClientMetadata(
            client_name="mcpauth e2e (Python SDK)", redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            token_endpoint_auth_method="none",
        )
        self.provider = OAuthClientProvider(
            server_url=self.server_url, client_metadata=metadata, storage=self.storage,
            redirect_handler=self._redirect, callback_handler=self._callback,
            client_metadata_url=self.client_metadata_url,
        )

    async def _redirect(self, url: str) -> None:
        self.authorization_urls.append(url)
        self.callbacks.append(await anyio.to_thread.run_sync(self.user.authorize, url, REDIRECT_URI))

    async def _callback(self) -> AuthorizationCodeResult:
        query = self.callbacks[-1]
        assert "error" not in query, query
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def _record(self, response: httpx2.Response) -> None:
        request = response.request
        form = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.log.append(Exchange(request.method, str(request.url), response.status_code, form))

    async def call(self, tool: str, arguments: dict) -> dict:
        http = httpx2.AsyncClient(auth=self.provider, timeout=30, event_hooks={"response": [self._record]})
        async with http, Client(streamable_http_client(self.server_url, http_client=http)) as client:
            result = await client.call_tool(tool, arguments)
        assert not result.is_error, result
        if result.structured_content is not None:
            return result.structured_content
        return json.loads(result.content[0].text)

    def requests(self, method: str, path_suffix: str) -> list[Exchange]:
        return [e for e in self.log if e.method == method and urlsplit(e.url).path.endswith(path_suffix)]


def call_tool(client: PythonClient, tool: str, arguments: dict | None = None) -> dict:
    return run_async(client.call, tool, arguments or {})


# --- the flows -------------------------------------------------------------------------------------
def run_full_flow(deployment: Deployment, client: PythonClient, *, cimd: bool) -> None:
    issuer, server_url, slug = deployment.issuer, deployment.server_url, deployment.slug
    origin = issuer.rsplit("/p/", 1)[0]

    # 401 naming the Protected Resource Metadata, which names our issuer.
    refused = raw_mcp_post(server_url, None)
    assert refused.status_code == 401
    metadata_url = f"{server_url.rsplit('/mcp', 1)[0]}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in refused.headers["www-authenticate"]
    prm = httpx2.get(metadata_url).json()
    assert prm["resource"] == server_url and prm["authorization_servers"] == [issuer]

    # The whole flow, driven by the SDK, up to a successful tools/call.
    me = call_tool(client, "whoami")
    assert me["subject"] == deployment.subject and me["resource"] == server_url
    assert "mcp:tools" in me["scopes"]
    first = client.log[0]
    assert (first.method, first.url, first.status) == ("POST", server_url, 401)
    assert client.requests("GET", "/.well-known/oauth-protected-resource/mcp")[0].status == 200
    discovery = client.requests("GET", f"/.well-known/oauth-authorization-server/p/{slug}")
    assert discovery and discovery[0].url == f"{origin}/.well-known/oauth-authorization-server/p/{slug}"
    assert discovery[0].status == 200
    registrations = client.requests("POST", "/api/oauth/register")
    if cimd:
        assert registrations == []
        assert client.storage.client_info.client_id == client.client_metadata_url
    else:
        assert [r.status for r in registrations] == [201]
        assert registrations[0].url == f"{issuer}/api/oauth/register"
    client_id = client.storage.client_info.client_id
    authorize = parse_qs(urlsplit(client.authorization_urls[0]).query)
    assert client.authorization_urls[0].startswith(f"{issuer}/oauth/authorize?")
    assert authorize["code_challenge_method"] == ["S256"] and authorize["code_challenge"]
    assert authorize["resource"] == [server_url] and authorize["client_id"] == [client_id]
    assert client.callbacks[0]["iss"] == issuer  # RFC 9207 (the SDK checks it too)
    assert {f"/p/{slug}/oauth/signin", f"/p/{slug}/oauth/consent"} <= set(client.user.pages)
    tokens = client.requests("POST", "/oauth/token")
    assert [(t.status, t.form["grant_type"], t.form.get("resource")) for t in tokens] == [
        (200, "authorization_code", server_url)]
    first_tokens = client.storage.tokens
    assert first_tokens.refresh_token and first_tokens.access_token
    assert client.requests("POST", "/mcp")[-1].status == 200

    # Refresh with rotation: after the access token really expires, the SDK refreshes by itself.
    time.sleep(ACCESS_TOKEN_TTL + 1)
    assert call_tool(client, "add", {"a": 2, "b": 3}) == {"result": 5}
    refreshes = [t for t in client.requests("POST", "/oauth/token") if t.form["grant_type"] == "refresh_token"]
    assert [r.status for r in refreshes] == [200]
    assert refreshes[0].form["refresh_token"] == first_tokens.refresh_token
    second = client.storage.tokens
    assert second.refresh_token != first_tokens.refresh_token  # rotated
    assert second.access_token != first_tokens.access_token
    assert len(client.authorization_urls) == 1  # no second trip through the browser
    assert introspect(issuer, deployment.introspection_secret, second.access_token)["active"] is True

    # Revocation (RFC 7009) of the access token: the next call is refused; introspection says inactive.
    assert raw_mcp_post(server_url, second.access_token).status_code != 401
    revoked = httpx2.post(f"{issuer}/oauth/revoke", data={"token": second.access_token, "client_id": client_id,
                                                          "token_type_hint": "access_token"})
    assert revoked.status_code == 200
    refused = raw_mcp_post(server_url, second.access_token)
    assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]
    assert introspect(issuer, deployment.introspection_secret, second.access_token) == {"active": False}

    # Revoking the refresh token ends the family: it no longer refreshes.
    assert httpx2.post(f"{issuer}/oauth/revoke", data={"token": second.refresh_token, "client_id": client_id,
                                                       "token_type_hint": "refresh_token"}).status_code == 200
    assert introspect(issuer, deployment.introspection_secret, second.refresh_token) == {"active": False}
    again = httpx2.post(f"{issuer}/oauth/token", data={"grant_type": "refresh_token", "client_id": client_id,
                                                       "refresh_token": second.refresh_token})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_it_completes_the_flow_with_open_dcr(deployment_factory):
    deployment = deployment_factory("e2e-dcr")
    client = PythonClient(deployment.server_url, EndUser(deployment.email, PASSWORD))
    run_full_flow(deployment, client, cimd=False)

    # The SDK itself, holding only revoked tokens, is refused and starts over through the browser.
    seen = len(client.log)
    assert call_tool(client, "whoami")["subject"] == deployment.subject
    assert 401 in [e.status for e in client.log[seen:] if e.url == deployment.server_url]
    assert len(client.authorization_urls) == 2


def test_it_completes_the_flow_with_cimd(deployment_factory, cimd_host):
    deployment = deployment_factory("e2e-cimd")
    metadata_url = cimd_host("/clients/python-e2e.json", {
        "client_name": "mcpauth e2e (Python SDK, CIMD)", "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
    client = PythonClient(deployment.server_url, EndUser(deployment.email, PASSWORD), client_metadata_url=metadata_url)
    run_full_flow(deployment, client, cimd=True)


def test_it_completes_the_flow_with_a_jwt_project(deployment_factory):
    deployment = deployment_factory("e2e-jwt", token_format="jwt")
    client = PythonClient(deployment.server_url, EndUser(deployment.email, PASSWORD))
    run_full_flow(deployment, client, cimd=False)
    assert client.storage.tokens.access_token.count(".") == 2  # an RFC 9068 JWT, checked against the JWKS


@pytest.mark.parametrize(("token_format", "jwks_only"), [("opaque", False), ("jwt", True)])
def test_it_refuses_a_token_meant_for_another_resource_of_the_same_project(issuer, deployment_factory,
                                                                           token_format, jwks_only):
    # jwt + jwks_only: the MCP server holds no credential and checks `aud` in the signed token itself.
    deployment = deployment_factory(f"e2e-audience-{token_format}", token_format, jwks_only)
    client = issuer.manage("createclient", "--project", deployment.slug, "--name", "Audience probe",
                           "--redirect-uri", REDIRECT_URI)

    def mint(resource: str) -> str:
        response = httpx2.post(
            f"{deployment.issuer}/api/oauth/token/exchange",
            json={"client_id": client["client_id"], "subject": deployment.subject, "scopes": ["mcp:tools"],
                  "resource": resource},
            headers={"Authorization": f"Bearer {deployment.registration_secret}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    elsewhere = mint(deployment.other_resource)
    assert introspect(deployment.issuer, deployment.introspection_secret, elsewhere)["active"] is True
    refused = raw_mcp_post(deployment.server_url, elsewhere)
    assert refused.status_code == 401
    assert raw_mcp_post(deployment.server_url, mint(deployment.server_url)).status_code != 401
