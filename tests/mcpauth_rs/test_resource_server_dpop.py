"""mcpauth_rs and DPoP-bound tokens (RFC 9449 §7): tokens from our real token endpoint (pytest-django's
live server, real HTTP), each request's proof checked (signature, `ath`, `htm`, `htu`, key
binding, `iat`, `jti` replay, nonce), refusals answered with the right `WWW-Authenticate: DPoP`."""

import base64
import json
import urllib.error
import urllib.request
from typing import ClassVar
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from mcpauth_rs import ResourceServer, TokenRejected
from mcpauth_rs.core import DpopNonceRequired, DpopProofRejected
from mcpauth_rs.drf import McpauthAuthentication, configured_resource_server
from projects.models import ProjectSecret
from tests.dpop_support import DpopKey

pytestmark = pytest.mark.django_db(transaction=True)

MCP = "https://mcp.alpha.example/mcp"


@pytest.fixture
def issuer_url(live_server, settings, project_a):
    settings.PUBLIC_URL = live_server.url
    project_a.dpop = "allowed"
    project_a.save()
    return f"{live_server.url}/p/alpha"


@pytest.fixture
def secret(project_a):
    return ProjectSecret.issue(project_a, "MCP server", ["introspect"])[1]


@pytest.fixture
def key():
    return DpopKey()


def token_for(issuer_url: str, client, key: DpopKey | None) -> dict:
    """A client_credentials token from the real endpoint, bound to `key` when one is given."""
    credentials = base64.b64encode(f"{client.client_id}:{client.plain_secret}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/x-www-form-urlencoded"}
    if key is not None:
        headers["DPoP"] = key.proof("POST", f"{issuer_url}/oauth/token")
    body = urlencode({"grant_type": "client_credentials", "resource": MCP}).encode()
    request = urllib.request.Request(f"{issuer_url}/oauth/token", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        pytest.fail(f"token endpoint: {exc.code} {exc.read()!r}")


def resource_server(issuer_url, secret=None, **options) -> ResourceServer:
    return ResourceServer(issuer_url, MCP, introspection_secret=secret, dpop=True, cache_seconds=0, **options)


def dpop_request(rs, token, proof, method="POST", url=MCP):
    return rs.verify_request(f"DPoP {token}", method=method, url=url, dpop=proof)


@pytest.fixture
def bound(issuer_url, confidential_client_a, key) -> str:
    body = token_for(issuer_url, confidential_client_a, key)
    assert body["token_type"] == "DPoP"
    return body["access_token"]


# --- accepted ------------------------------------------------------------------------------------------
def test_it_accepts_a_bound_opaque_token_with_its_proof(issuer_url, secret, bound, key, confidential_client_a):
    verified = dpop_request(resource_server(issuer_url, secret), bound, key.proof("POST", MCP, access_token=bound))
    assert verified.jkt == key.jkt and verified.client_id == confidential_client_a.client_id
    assert verified.source == "introspection"


def test_it_accepts_a_bound_jwt_with_only_the_jwks(issuer_url, project_a, confidential_client_a, key):
    project_a.token_format = "jwt"
    project_a.save()
    token = token_for(issuer_url, confidential_client_a, key)["access_token"]
    verified = dpop_request(resource_server(issuer_url), token, key.proof("GET", MCP, access_token=token), "GET")
    assert verified.source == "jwt" and verified.jkt == key.jkt


def test_bearer_tokens_still_work_as_before(issuer_url, secret, confidential_client_a):
    token = token_for(issuer_url, confidential_client_a, None)["access_token"]
    rs = resource_server(issuer_url, secret)
    assert rs.verify_request(f"Bearer {token}", method="POST", url=MCP).jkt is None


# --- refused ---------------------------------------------------------------------------------------------
def assert_refused(call, error, scheme="DPoP"):
    with pytest.raises(TokenRejected) as refused:
        call()
    assert (refused.value.error, refused.value.status, refused.value.scheme) == (error, 401, scheme)
    return refused.value


def test_it_refuses_a_proof_by_another_key(issuer_url, secret, bound):
    rs = resource_server(issuer_url, secret)
    thief = DpopKey()
    exc = assert_refused(lambda: dpop_request(rs, bound, thief.proof("POST", MCP, access_token=bound)),
                         "invalid_dpop_proof")
    challenge = rs.challenge(exc)["WWW-Authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge and 'algs="ES256' in challenge


def test_it_refuses_a_replayed_proof_across_workers_sharing_a_cache(issuer_url, secret, bound, key):
    # Two resource-server processes share Django's cache (Redis in production): a proof seen by one
    # is refused by the other.
    first, second = (resource_server(issuer_url, secret, dpop_replay_cache=cache) for _ in range(2))
    proof = key.proof("POST", MCP, access_token=bound)
    assert dpop_request(first, bound, proof).jkt == key.jkt
    assert_refused(lambda: dpop_request(second, bound, proof), "invalid_dpop_proof")
    assert_refused(lambda: dpop_request(first, bound, proof), "invalid_dpop_proof")


@pytest.mark.parametrize("method, url", [("GET", MCP), ("POST", "https://mcp.alpha.example/other"),
                                         ("POST", "https://evil.example/mcp")])
def test_it_refuses_a_proof_for_another_method_or_uri(issuer_url, secret, bound, key, method, url):
    proof = key.proof(method, url, access_token=bound)
    assert_refused(lambda: dpop_request(resource_server(issuer_url, secret), bound, proof), "invalid_dpop_proof")


def test_it_refuses_a_proof_for_another_token_or_none(issuer_url, secret, bound, key, confidential_client_a):
    rs = resource_server(issuer_url, secret)
    other = token_for(issuer_url, confidential_client_a, key)["access_token"]
    assert_refused(lambda: dpop_request(rs, bound, key.proof("POST", MCP, access_token=other)), "invalid_dpop_proof")
    assert_refused(lambda: dpop_request(rs, bound, key.proof("POST", MCP)), "invalid_dpop_proof")  # no ath
    assert_refused(lambda: dpop_request(rs, bound, None), "invalid_dpop_proof")


def test_it_refuses_a_bound_token_presented_as_bearer(issuer_url, secret, bound):
    rs = resource_server(issuer_url, secret)
    exc = assert_refused(lambda: rs.verify_request(f"Bearer {bound}", method="POST", url=MCP), "invalid_token")
    assert_refused(lambda: rs.verify(bound), "invalid_token")
    assert rs.challenge(exc)["WWW-Authenticate"].startswith('DPoP resource_metadata=')


def test_it_refuses_an_unbound_token_under_the_dpop_scheme(issuer_url, secret, confidential_client_a, key):
    token = token_for(issuer_url, confidential_client_a, None)["access_token"]
    rs = resource_server(issuer_url, secret)
    assert_refused(lambda: dpop_request(rs, token, key.proof("POST", MCP, access_token=token)), "invalid_token")


def test_a_resource_server_without_dpop_refuses_the_scheme(issuer_url, secret, bound, key):
    rs = ResourceServer(issuer_url, MCP, introspection_secret=secret)
    assert_refused(lambda: dpop_request(rs, bound, key.proof("POST", MCP, access_token=bound)), "invalid_token",
                   scheme="Bearer")
    assert "dpop_signing_alg_values_supported" not in rs.metadata()
    assert "ES256" in resource_server(issuer_url).metadata()["dpop_signing_alg_values_supported"]


def test_it_asks_for_a_nonce_when_configured_then_accepts_it(issuer_url, secret, bound, key):
    rs = resource_server(issuer_url, secret, dpop_nonce_secret="rs-nonce-secret-shared-by-all-workers")
    exc = assert_refused(lambda: dpop_request(rs, bound, key.proof("POST", MCP, access_token=bound)), "use_dpop_nonce")
    assert isinstance(exc, DpopNonceRequired)
    headers = rs.challenge(exc)
    assert 'error="use_dpop_nonce"' in headers["WWW-Authenticate"] and headers["DPoP-Nonce"] == exc.nonce

    proof = key.proof("POST", MCP, access_token=bound, nonce=headers["DPoP-Nonce"])

    assert dpop_request(rs, bound, proof).jkt == key.jkt
    assert_refused(lambda: dpop_request(rs, bound, key.proof("POST", MCP, access_token=bound, nonce="old")),
                   "use_dpop_nonce")


def test_a_revoked_bound_token_is_refused(issuer_url, secret, bound, key, confidential_client_a):
    from oauth.tokens import issue as tokens
    from oauth.tokens import revoke

    revoke.access_token(tokens.live_access_token(confidential_client_a.project, bound))
    exc = assert_refused(lambda: dpop_request(resource_server(issuer_url, secret), bound,
                                              key.proof("POST", MCP, access_token=bound)), "invalid_token")
    assert not isinstance(exc, DpopProofRejected)


# --- Django REST framework --------------------------------------------------------------------------------
class WhoAmI(APIView):
    authentication_classes: ClassVar = [McpauthAuthentication]
    permission_classes: ClassVar = [IsAuthenticated]

    def post(self, request):
        return Response({"client_id": request.user.client_id, "jkt": request.auth.jkt})


@pytest.fixture
def drf(settings, issuer_url, secret):
    settings.MCPAUTH_RESOURCE_SERVER = {"issuer": issuer_url, "resource": MCP, "cache_seconds": 0,
                                        "introspection_secret": secret, "dpop": True, "dpop_replay_cache": cache}
    configured_resource_server.cache_clear()
    yield APIRequestFactory()
    configured_resource_server.cache_clear()


def test_drf_takes_dpop_requests_and_challenges_a_bound_bearer(drf, bound, key):
    ok = WhoAmI.as_view()(drf.post("/mcp", HTTP_AUTHORIZATION=f"DPoP {bound}", HTTP_HOST="mcp.alpha.example",
                                   HTTP_DPOP=key.proof("POST", MCP, access_token=bound)))
    assert ok.status_code == 200 and ok.data["jkt"] == key.jkt

    as_bearer = WhoAmI.as_view()(drf.post("/mcp", HTTP_AUTHORIZATION=f"Bearer {bound}"))
    stolen = WhoAmI.as_view()(drf.post("/mcp", HTTP_AUTHORIZATION=f"DPoP {bound}",
                                       HTTP_DPOP=DpopKey().proof("POST", MCP, access_token=bound)))

    assert as_bearer.status_code == 401 and as_bearer["WWW-Authenticate"].startswith("DPoP ")
    assert 'error="invalid_token"' in as_bearer["WWW-Authenticate"]
    assert stolen.status_code == 401 and 'error="invalid_dpop_proof"' in stolen["WWW-Authenticate"]
