"""mcpauth_rs: the resource-server checks (RFC 7662, RFC 9068, RFC 8707, RFC 9728) against our real
issuer (pytest-django's live server: real HTTP, real PostgreSQL and Redis), plus its `mcp` SDK and
Django REST framework adapters."""

import json
import os
import time
from typing import ClassVar

import pytest
from jwcrypto import jwk, jwt
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from mcpauth_rs import InsufficientScope, ResourceServer, TokenRejected
from mcpauth_rs.core import protected_resource_metadata_url
from mcpauth_rs.drf import McpauthAuthentication, configured_resource_server, protected_resource_metadata
from mcpauth_rs.mcp import McpauthTokenVerifier, auth_settings
from oauth.models import AccessToken
from oauth.tokens import issue as tokens
from oauth.tokens import jwt_tokens, revoke
from projects.models import Project, ProjectSecret, SigningKey
from tests.browser import run_async

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)

MCP = "https://mcp.alpha.example/mcp"
FILES = "https://files.alpha.example/mcp"


@pytest.fixture
def issuer_url(live_server, settings):
    settings.PUBLIC_URL = live_server.url
    return f"{live_server.url}/p/alpha"


@pytest.fixture
def introspection_secret(project_a):
    return ProjectSecret.issue(project_a, "MCP server", ["introspect"])[1]


def mint(project, client, user, *, audience=(MCP,), scopes=("mcp:tools",)) -> dict:
    return tokens.mint(project, project.issuer, client, user, scopes=list(scopes), audience=list(audience))


def resource_server(issuer_url, secret=None, **options) -> ResourceServer:
    return ResourceServer(issuer_url, MCP, introspection_secret=secret, **options)


# --- introspection (opaque tokens) -----------------------------------------------------------------
def test_it_accepts_an_active_token_for_its_own_resource(issuer_url, introspection_secret, public_client_a,
                                                         end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    verified = resource_server(issuer_url, introspection_secret, required_scopes=["mcp:tools"]).verify(
        body["access_token"])
    assert verified.source == "introspection"
    assert verified.subject == end_user_a.subject and verified.client_id == public_client_a.client_id
    assert verified.scopes == ("mcp:tools",) and verified.audience == (MCP,) and verified.issuer == issuer_url


def test_it_refuses_a_token_meant_for_another_resource_of_the_project(issuer_url, introspection_secret,
                                                                      public_client_a, end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a, audience=[FILES])
    with pytest.raises(TokenRejected, match="aud") as refused:
        resource_server(issuer_url, introspection_secret).verify(body["access_token"])
    assert refused.value.error == "invalid_token" and refused.value.status == 401


def test_it_refuses_a_token_whose_iss_is_another_issuer(issuer_url, live_server, public_client_b, end_user_b):
    # A resource server of alpha pointed (by mistake) at bravo's introspection: bravo says active,
    # but the answer's `iss` is bravo's, so alpha's resource server still refuses it.
    bravo_secret = ProjectSecret.issue(public_client_b.project, "rs", ["introspect"])[1]
    body = tokens.mint(public_client_b.project, public_client_b.project.issuer, public_client_b, end_user_b,
                       scopes=["mcp:tools"], audience=[MCP.replace("alpha", "bravo")])
    rs = ResourceServer(issuer_url, MCP.replace("alpha", "bravo"), introspection_secret=bravo_secret,
                        introspection_endpoint=f"{live_server.url}/p/bravo/oauth/introspect")
    with pytest.raises(TokenRejected, match="iss"):
        rs.verify(body["access_token"])


def test_it_refuses_a_token_of_another_project(issuer_url, introspection_secret, public_client_b, end_user_b):
    body = tokens.mint(public_client_b.project, public_client_b.project.issuer, public_client_b, end_user_b,
                       scopes=["mcp:tools"], audience=["https://mcp.bravo.example/mcp"])
    with pytest.raises(TokenRejected, match="inactive"):
        resource_server(issuer_url, introspection_secret).verify(body["access_token"])


def test_it_refuses_an_expired_token(issuer_url, introspection_secret, public_client_a, end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    AccessToken.objects.filter(token_checksum=tokens.checksum(body["access_token"])).update(
        expires="2000-01-01T00:00:00Z")
    with pytest.raises(TokenRejected, match="inactive"):
        resource_server(issuer_url, introspection_secret).verify(body["access_token"])


def test_it_refuses_a_refresh_token_and_garbage(issuer_url, introspection_secret, public_client_a, end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    rs = resource_server(issuer_url, introspection_secret)
    for presented in (body["refresh_token"], "mcpat_not-a-token", ""):
        with pytest.raises(TokenRejected):
            rs.verify(presented)


def test_it_reports_a_missing_scope_as_insufficient_scope(issuer_url, introspection_secret, public_client_a,
                                                          end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a, scopes=["mcp:tools"])
    rs = resource_server(issuer_url, introspection_secret, required_scopes=["mcp:tools", "mcp:prompts"])
    with pytest.raises(InsufficientScope) as refused:
        rs.verify(body["access_token"])
    assert refused.value.status == 403 and refused.value.error == "insufficient_scope"
    assert refused.value.missing == ("mcp:prompts",) and refused.value.token.subject == end_user_a.subject


def test_it_fails_closed_without_introspection_credentials_or_with_wrong_ones(issuer_url, public_client_a,
                                                                              end_user_a, project_b):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    with pytest.raises(TokenRejected, match="credentials"):
        resource_server(issuer_url, None).verify(body["access_token"])
    bravo_secret = ProjectSecret.issue(project_b, "rs", ["introspect"])[1]
    with pytest.raises(TokenRejected, match="HTTP 401"):
        resource_server(issuer_url, bravo_secret).verify(body["access_token"])


def test_it_caches_introspection_briefly_and_forgets_on_request(issuer_url, introspection_secret,
                                                                public_client_a, end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    cached = resource_server(issuer_url, introspection_secret, cache_seconds=60)
    uncached = resource_server(issuer_url, introspection_secret, cache_seconds=0)
    cached.verify(body["access_token"])
    uncached.verify(body["access_token"])
    revoke.access_token(AccessToken.objects.get(token_checksum=tokens.checksum(body["access_token"])))

    assert cached.verify(body["access_token"]).subject == end_user_a.subject  # the cached answer, for now
    with pytest.raises(TokenRejected, match="inactive"):
        uncached.verify(body["access_token"])
    cached.forget(body["access_token"])
    with pytest.raises(TokenRejected, match="inactive"):
        cached.verify(body["access_token"])


def test_it_uses_client_credentials_for_introspection_too(issuer_url, confidential_client_a, public_client_a,
                                                          end_user_a):
    body = mint(public_client_a.project, public_client_a, end_user_a)
    rs = ResourceServer(issuer_url, MCP, client_id=confidential_client_a.client_id,
                        client_secret=confidential_client_a.plain_secret)
    assert rs.verify(body["access_token"]).client_id == public_client_a.client_id


# --- RFC 9068 JWT access tokens ----------------------------------------------------------------------
@pytest.fixture
def jwt_project(project_a):
    project_a.token_format = Project.TokenFormat.JWT
    project_a.save()
    return project_a


def test_it_verifies_a_jwt_against_the_jwks_without_any_credential(issuer_url, jwt_project, public_client_a,
                                                                   end_user_a):
    body = mint(jwt_project, public_client_a, end_user_a)
    verified = resource_server(issuer_url, token_format="jwt").verify(body["access_token"])
    assert verified.source == "jwt" and verified.subject == end_user_a.subject
    assert verified.claims["iss"] == issuer_url and verified.audience == (MCP,)


def test_it_refuses_jwts_with_a_foreign_key_the_wrong_typ_or_claims(issuer_url, jwt_project):
    rs = resource_server(issuer_url)
    now = int(time.time())
    good = {"iss": issuer_url, "aud": MCP, "sub": "usr_1", "client_id": "c", "scope": "mcp:tools",
            "iat": now, "exp": now + 60}
    key = SigningKey.current(jwt_project)

    def signed(claims, *, typ="at+jwt", signer=None, kid=None) -> str:
        token = jwt.JWT(header={"alg": "ES256", "typ": typ, "kid": kid or key.kid}, claims=claims)
        token.make_signed_token(signer or key.private_jwk())
        return token.serialize()

    assert rs.verify(signed(good)).subject == "usr_1"
    stranger = jwk.JWK.generate(kty="EC", crv="P-256")
    cases = {
        "unknown kid": signed(good, signer=stranger, kid="stranger"),
        "bad signature": signed(good, signer=stranger),
        "typ": signed(good, typ="JWT"),
        "iss": signed({**good, "iss": issuer_url.replace("alpha", "bravo")}),
        "aud": signed({**good, "aud": FILES}),
        "expired": signed({**good, "exp": now - 1}),
        "nbf": signed({**good, "nbf": now + 600}),
    }
    for reason, token in cases.items():
        with pytest.raises(TokenRejected, match=reason):
            rs.verify(token)


def test_it_sees_a_revoked_jwt_when_asked_to_check_revocation(issuer_url, jwt_project, introspection_secret,
                                                              public_client_a, end_user_a):
    body = mint(jwt_project, public_client_a, end_user_a)
    local_only = resource_server(issuer_url, token_format="jwt")
    checked = resource_server(issuer_url, introspection_secret, check_revocation=True, cache_seconds=0)
    checked.verify(body["access_token"])
    revoke.access_token(AccessToken.objects.get(token_checksum=tokens.checksum(body["access_token"])))
    with pytest.raises(TokenRejected, match="inactive"):
        checked.verify(body["access_token"])
    # Stateless verification cannot know: the documented trade-off of JWKS-only checking.
    assert local_only.verify(body["access_token"]).subject == end_user_a.subject
    assert jwt_tokens.looks_like_jwt(body["access_token"])


# --- RFC 9728 metadata and the adapters ----------------------------------------------------------------
def test_it_describes_itself_in_protected_resource_metadata(issuer_url):
    rs = resource_server(issuer_url, required_scopes=["mcp:tools"])
    assert rs.metadata_url == "https://mcp.alpha.example/.well-known/oauth-protected-resource/mcp"
    assert protected_resource_metadata_url("https://x.example/") == "https://x.example/.well-known/oauth-protected-resource"
    assert rs.metadata() == {"resource": MCP, "authorization_servers": [issuer_url],
                             "bearer_methods_supported": ["header"], "scopes_supported": ["mcp:tools"]}
    assert rs.www_authenticate() == (
        'Bearer resource_metadata="https://mcp.alpha.example/.well-known/oauth-protected-resource/mcp", '
        'scope="mcp:tools"')


def test_it_gives_the_mcp_sdk_an_access_token_or_nothing(issuer_url, introspection_secret, public_client_a,
                                                         end_user_a):
    good = mint(public_client_a.project, public_client_a, end_user_a)["access_token"]
    elsewhere = mint(public_client_a.project, public_client_a, end_user_a, audience=[FILES])["access_token"]
    narrow = mint(public_client_a.project, public_client_a, end_user_a, scopes=["mcp:prompts"])["access_token"]
    rs = resource_server(issuer_url, introspection_secret, required_scopes=["mcp:tools"])
    verifier = McpauthTokenVerifier(rs)

    token = run_async(verifier.verify_token, good)
    assert (token.client_id, token.subject, token.resource, token.scopes) == (
        public_client_a.client_id, end_user_a.subject, MCP, ["mcp:tools"])
    assert token.claims["iss"] == issuer_url
    assert run_async(verifier.verify_token, elsewhere) is None
    # Valid but too narrow: handed over so the SDK answers 403 insufficient_scope, not 401.
    assert run_async(verifier.verify_token, narrow).scopes == ["mcp:prompts"]
    settings = auth_settings(rs)
    assert str(settings.issuer_url) == issuer_url and str(settings.resource_server_url) == MCP
    assert settings.validate_token_resource is True and settings.required_scopes == ["mcp:tools"]


class WhoAmI(APIView):
    authentication_classes: ClassVar = [McpauthAuthentication]
    permission_classes: ClassVar = [IsAuthenticated]

    def get(self, request):
        return Response({"subject": request.user.subject, "scopes": list(request.auth.scopes)})


@pytest.fixture
def drf_resource_server(settings, issuer_url, introspection_secret):
    settings.MCPAUTH_RESOURCE_SERVER = {"issuer": issuer_url, "resource": MCP, "cache_seconds": 0,
                                        "introspection_secret": introspection_secret,
                                        "required_scopes": ["mcp:tools"]}
    configured_resource_server.cache_clear()
    yield
    configured_resource_server.cache_clear()


def test_it_authenticates_drf_requests(drf_resource_server, public_client_a, end_user_a):
    factory = APIRequestFactory()
    good = mint(public_client_a.project, public_client_a, end_user_a)["access_token"]
    elsewhere = mint(public_client_a.project, public_client_a, end_user_a, audience=[FILES])["access_token"]
    narrow = mint(public_client_a.project, public_client_a, end_user_a, scopes=["mcp:prompts"])["access_token"]
    challenge = 'Bearer resource_metadata="https://mcp.alpha.example/.well-known/oauth-protected-resource/mcp"'

    ok = WhoAmI.as_view()(factory.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {good}"))
    assert ok.status_code == 200 and ok.data == {"subject": end_user_a.subject, "scopes": ["mcp:tools"]}
    anonymous = WhoAmI.as_view()(factory.get("/mcp"))
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith(challenge)
    wrong_audience = WhoAmI.as_view()(factory.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {elsewhere}"))
    assert wrong_audience.status_code == 401 and wrong_audience.data["detail"].code == "invalid_token"
    too_narrow = WhoAmI.as_view()(factory.get("/mcp", HTTP_AUTHORIZATION=f"Bearer {narrow}"))
    assert too_narrow.status_code == 403 and too_narrow.data["detail"].code == "insufficient_scope"

    metadata = protected_resource_metadata(factory.get("/.well-known/oauth-protected-resource/mcp"))
    assert metadata.status_code == 200 and json.loads(metadata.content)["resource"] == MCP
