"""The client-compatibility matrix replayed: one test per client in `tests/e2e/clients/matrix.py`.

Each case walks the whole flow the way that client does, against a fresh project: discovery at
the RFC 8414 path-inserted location → registration (its DCR body POSTed, or its CIMD document
served by a real local TLS server and fetched by us at authorize) → authorize with PKCE S256 and
its `resource`, `scope` and `prompt` → hosted sign-in (Email/Password) and consent (Allow) →
code exchange → refresh → revocation → introspection says inactive. ChatGPT's cases sign RS256
client assertions with a test key whose JWKS the same TLS server publishes at `jwks_uri`.
"""

import json
import secrets
import time
from urllib.parse import urlencode, urlsplit

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jwt import JWT

from oauth.models import Application
from tests.authz import pkce_pair, query_of, without_query
from tests.conftest import PASSWORD
from tests.e2e.clients.matrix import CLIENTS, Client
from tests.oauth.clients.test_cimd import DocumentServer

pytestmark = pytest.mark.django_db

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MCP_SERVER = "https://mcp.alpha.example/mcp"  # project_a's default resource: the URL clients use



@pytest.fixture(scope="module")
def rsa_key() -> JWK:
    """ChatGPT's kind of key (RSA, kid like cimd-<date>); generated once, RSA keys are slow to make."""
    return JWK.generate(kty="RSA", size=2048, kid="cimd-20260428030119")


@pytest.fixture
def tls(tmp_path, settings):
    server = DocumentServer(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the document server is on 127.0.0.1
    yield server
    server.stop()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def form(http, url: str, data: dict, **headers):
    return http.post(path_of(url), urlencode(data), content_type="application/x-www-form-urlencoded", **headers)


class Replay:
    """One client's walk through the flow; `auth()` adds its token-endpoint authentication."""

    def __init__(self, entry: Client, http, project, tls, key):
        self.entry, self.http, self.project, self.tls, self.key = entry, http, project, tls, key
        self.metadata: dict = {}
        self.client_id = ""

    # -- discovery (RFC 8414 §3.1: the path-inserted location first, as MCP clients do) --
    def discover(self) -> None:
        response = self.http.get(f"/.well-known/oauth-authorization-server/p/{self.project.slug}")
        assert response.status_code == 200
        self.metadata = response.json()
        assert self.metadata["issuer"] == self.project.issuer
        assert "S256" in self.metadata["code_challenge_methods_supported"]
        methods = self.metadata["token_endpoint_auth_methods_supported"]
        assert self.entry.keeps.auth_method in methods
        if self.entry.way == "cimd":  # claude.ai engages CIMD only with both of these
            assert self.metadata["client_id_metadata_document_supported"] is True and "none" in methods
        if self.entry.keeps.auth_method == "private_key_jwt":
            assert "RS256" in self.metadata["token_endpoint_auth_signing_alg_values_supported"]

    # -- registration --
    def register(self) -> None:
        if self.entry.way == "cimd":
            self.serve_document()
            return
        response = self.http.post(path_of(self.metadata["registration_endpoint"]), json.dumps(self.entry.sends),
                                  content_type="application/json")
        assert response.status_code == 201, response.content
        body = response.json()
        self.client_id = body["client_id"]
        assert body["grant_types"] == self.entry.keeps.grant_types  # the values in force (RFC 7591 §3.2.1)
        assert body["token_endpoint_auth_method"] == self.entry.keeps.auth_method
        assert "client_secret" not in body

    def serve_document(self) -> None:
        document = dict(self.entry.sends)
        path = urlsplit(self.entry.url).path
        document["client_id"] = self.client_id = self.tls.url(path)
        if "jwks_uri" in document:
            document["jwks_uri"] = self.tls.serve("/oauth/jwks.json",
                                                  {"keys": [self.key.export_public(as_dict=True)]})
        self.tls.serve(path, document)

    # -- authorize, sign in, consent --
    def authorize(self, challenge: str) -> str:
        shape = self.entry.authorize
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": shape.redirect_uri,
                  "code_challenge": challenge, "code_challenge_method": "S256", "state": "matrix-state",
                  "scope": shape.scope, "resource": MCP_SERVER if shape.resource else None, "prompt": shape.prompt}
        query = urlencode({k: v for k, v in params.items() if v is not None})
        response = self.http.get(f"{path_of(self.metadata['authorization_endpoint'])}?{query}")
        assert response.status_code == 302, response.content.decode()[:500]
        signin = response["Location"]
        assert f"/p/{self.project.slug}/oauth/signin?request=" in signin
        response = self.http.post(signin, {"email": "eve@example.com", "password": PASSWORD})
        assert response.status_code == 302 and "/oauth/consent?request=" in response["Location"]
        response = self.http.post(response["Location"], {"decision": "allow"})
        assert response.status_code == 302
        location = response["Location"]
        assert without_query(location) == shape.redirect_uri.split("?")[0]
        params = query_of(location)
        assert params["state"] == "matrix-state" and params["iss"] == self.project.issuer
        return params["code"]

    # -- the token endpoint, with the client's authentication --
    def auth(self) -> dict:
        """`client_id` for a public client; else an RS256 assertion (RFC 7523 §3), `aud` the token
        endpoint at every endpoint, as client libraries send it."""
        if self.entry.keeps.auth_method != "private_key_jwt":
            return {"client_id": self.client_id}
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.metadata["token_endpoint"], "iat": now, "exp": now + 60,
                  "jti": secrets.token_urlsafe(16)}
        token = JWT(header={"alg": "RS256", "kid": self.key.get("kid")}, claims=claims)
        token.make_signed_token(self.key)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token.serialize()}

    def token(self, data: dict) -> dict:
        extra = {"resource": MCP_SERVER} if self.entry.authorize.resource else {}
        response = form(self.http, self.metadata["token_endpoint"], {**data, **extra, **self.auth()})
        assert response.status_code == 200, response.content
        assert response["Cache-Control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer" and body["access_token"] and body["refresh_token"]
        return body

    def revoke(self, token: str) -> None:
        response = form(self.http, self.metadata["revocation_endpoint"], {"token": token, **self.auth()})
        assert response.status_code == 200, response.content

    def introspect(self, token: str) -> dict:
        response = form(self.http, self.metadata["introspection_endpoint"], {"token": token},
                        HTTP_AUTHORIZATION=f"Bearer {self.project.registration_secret}")
        assert response.status_code == 200
        return response.json()


@pytest.mark.parametrize("entry", [
    pytest.param(entry, id=entry.id,
                 marks=[pytest.mark.xfail(strict=True, reason=entry.missing)] if entry.missing else [])
    for entry in CLIENTS
])
def test_it_completes_the_whole_flow(entry, client, project_a, end_user_a, tls, rsa_key):
    replay = Replay(entry, client, project_a, tls, rsa_key)
    replay.discover()
    replay.register()
    verifier, challenge = pkce_pair()
    code = replay.authorize(challenge)

    stored = Application.objects.get(project=project_a, client_id=replay.client_id)
    assert stored.metadata["grant_types"] == entry.keeps.grant_types  # what the project keeps
    assert stored.metadata["token_endpoint_auth_method"] == entry.keeps.auth_method
    assert stored.redirect_uris.split() == (entry.keeps.redirect_uris or entry.sends["redirect_uris"])
    assert stored.registration_path == ("cimd" if entry.way == "cimd" else "open")
    dropped = {name: [item["value"] for item in items] for name, items in stored.narrowed.items()}
    assert dropped == entry.keeps.dropped  # recorded, with reasons, for the dashboard

    issued = replay.token({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                           "redirect_uri": entry.authorize.redirect_uri})
    active = replay.introspect(issued["access_token"])
    assert active["active"] is True and active["client_id"] == replay.client_id and active["aud"] == MCP_SERVER

    refreshed = replay.token({"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refreshed["refresh_token"] != issued["refresh_token"]
    assert set(refreshed["scope"].split()) <= set(issued["scope"].split())  # never widens

    replay.revoke(refreshed["refresh_token"])  # RFC 7009: revokes the whole family
    assert replay.introspect(refreshed["refresh_token"]) == {"active": False}
    assert replay.introspect(refreshed["access_token"]) == {"active": False}
