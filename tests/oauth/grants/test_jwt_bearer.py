"""Identity Assertion JWT Authorization Grants (ID-JAG) at the token endpoint (RFC 7523 §2.1,
draft-ietf-oauth-identity-assertion-authz-grant, MCP ext-auth enterprise-managed-authorization).

One test per check of `oauth.grants.jwt_bearer`, each asserting the status, the RFC error and that
nothing was issued; then the cross-project and key-confusion cases, discovery, introspection and
the audit log. ID-JAGs are signed with jwcrypto keys made here, as a company's IdP would sign them.
"""

import json
import secrets
import time

import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS
from jwcrypto.jwt import JWT

from enterprise.models import EnterpriseIdentity, TrustedIssuer
from oauth.models import AccessToken, Application, RefreshToken
from oauth.trusted_issuers import IssuerSettings, remove, trust
from projects import secrets as project_secrets
from projects.models import AuditEvent, User
from tests.dpop_support import DpopKey
from tests.oauth.clients.test_cimd import DocumentServer
from tests.token_support import basic, introspect, make_code, post_form, redeem, refresh

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
IDP = "https://idp.acme.example"
OTHER_IDP = "https://login.other.example"


def new_key(kid: str, kty: str = "RSA") -> JWK:
    if kty == "EC":
        return JWK.generate(kty="EC", crv="P-256", kid=kid)
    return JWK.generate(kty="RSA", size=2048, kid=kid)


def public_jwks(*keys: JWK) -> dict:
    return {"keys": [key.export_public(as_dict=True) for key in keys]}


def claims_for(project, client, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": IDP, "sub": "00u-alice", "aud": project.issuer, "client_id": client.client_id,
              "resource": project.default_resource, "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 300,
              "scope": "mcp:tools mcp:resources", "email": "alice@acme.example", **overrides}
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: JWK, claims: dict, *, alg: str = "RS256", typ: str | None = "oauth-id-jag+jwt") -> str:
    header = {"alg": alg, "kid": key.get("kid"), **({"typ": typ} if typ else {})}
    token = JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def grant_client(project, name="Enterprise agent") -> Application:
    """A confidential client registered (in the dashboard) for the jwt-bearer grant; `.plain_secret` kept."""
    plain = project_secrets.generate(project_secrets.CLIENT_SECRET_PREFIX)
    client = Application.objects.create(
        project=project, name=name, client_type=Application.CLIENT_CONFIDENTIAL, client_secret=plain,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS, redirect_uris="",
        registration_path=Application.Path.DASHBOARD,
        metadata={"client_name": name, "token_endpoint_auth_method": "client_secret_basic", "grant_types": [GRANT]},
    )
    client.plain_secret = plain
    return client


def present(http, project, client, assertion: str | None, *, dpop: str | None = None, **params):
    data = {"grant_type": GRANT, **({"assertion": assertion} if assertion is not None else {}), **params}
    headers = {"HTTP_DPOP": dpop} if dpop else {}
    return post_form(http, f"/p/{project.slug}/oauth/token", data, HTTP_AUTHORIZATION=basic(client), **headers)


def assert_refused(response, error: str = "invalid_grant", status: int = 400, says: str = "") -> None:
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert says in response.json().get("error_description", "")
    assert not AccessToken.objects.exists()


@pytest.fixture
def idp_key():
    return new_key("idp-1")


@pytest.fixture
def agent(project_a):
    return grant_client(project_a)


@pytest.fixture
def trusted(project_a, idp_key, agent):
    return trust(project_a, IssuerSettings(issuer=IDP, jwks=public_jwks(idp_key), client_ids=[agent.client_id]),
                 actor="test")


@pytest.fixture
def alice_a(project_a):
    return User.objects.create_end_user(project_a, "alice@acme.example")


@pytest.fixture
def docs(tmp_path, settings):
    server = DocumentServer(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the server is on 127.0.0.1
    yield server
    server.stop()


# -- success ---------------------------------------------------------------------------------------

def test_it_issues_an_access_token_for_an_id_jag(client, project_a, agent, trusted, idp_key, alice_a):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "mcp:tools mcp:resources"
    assert "refresh_token" not in body and response["Cache-Control"] == "no-store"
    row = AccessToken.objects.get()
    assert row.user == alice_a and row.application == agent
    assert row.resource == [project_a.default_resource] and row.claims == {"assertion_iss": IDP}
    assert EnterpriseIdentity.objects.get().user == alice_a  # linked by the verified email
    assert not RefreshToken.objects.exists()


def test_a_proof_binds_the_token_to_its_key(client, project_a, agent, trusted, idp_key, alice_a):
    """RFC 9449 §5: in a project that takes DPoP proofs, an ID-JAG grant with a proof is a DPoP token."""
    project_a.dpop = "allowed"
    project_a.save()
    key = DpopKey()

    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)),
                       dpop=key.proof("POST", f"{project_a.issuer}/oauth/token"))

    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    assert AccessToken.objects.get().claims == {"assertion_iss": IDP, "cnf": {"jkt": key.jkt}}


def test_it_uses_the_link_once_made_whatever_the_email_says(client, project_a, agent, trusted, idp_key, alice_a):
    assert present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).status_code == 200
    again = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent, email="x@else.example")))
    assert again.status_code == 200, again.content
    assert {t.user_id for t in AccessToken.objects.all()} == {alice_a.pk}


def test_it_issues_a_refresh_token_when_the_issuer_allows_it(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)))
    assert response.status_code == 200 and response.json()["refresh_token"].startswith("mcprt_")
    assert RefreshToken.objects.get().user == alice_a


def test_the_refresh_token_refreshes_for_a_client_holding_only_the_grant(client, project_a, agent, trusted,
                                                                         idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    issued = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()
    response = post_form(client, f"/p/{project_a.slug}/oauth/token",
                         {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
                         HTTP_AUTHORIZATION=basic(agent))
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == issued["scope"] and response.json()["refresh_token"] != issued["refresh_token"]


def introspected_issuer(http, project, token: str) -> str | None:
    body = introspect(http, project, token, project.registration_secret).json()
    assert body["active"] is True, body
    return body.get("assertion_iss")


def test_a_refreshed_token_still_shows_the_assertion_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    issued = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()
    once = refresh(client, agent, issued["refresh_token"]).json()
    AccessToken.objects.all().delete()  # the earlier access tokens revoked or swept: the family still knows
    twice = refresh(client, agent, once["refresh_token"]).json()
    assert introspect(client, project_a, once["access_token"], project_a.registration_secret).json() == {"active": False}
    assert introspected_issuer(client, project_a, twice["access_token"]) == IDP
    assert AccessToken.objects.get().claims == {"assertion_iss": IDP}
    rows = RefreshToken.objects.order_by("created")
    assert [(r.assertion_iss, r.revoked is None) for r in rows] == [(IDP, False), (IDP, False), (IDP, True)]
    assert len({r.token_family for r in rows}) == 1


def test_a_token_refreshed_once_shows_the_assertion_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    issued = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()
    once = refresh(client, agent, issued["refresh_token"]).json()
    assert introspected_issuer(client, project_a, issued["access_token"]) == IDP
    assert introspected_issuer(client, project_a, once["access_token"]) == IDP
    assert [t.claims for t in AccessToken.objects.order_by("created")] == [{"assertion_iss": IDP}] * 2


def test_the_refresh_is_audited_with_the_assertion_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    issued = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()
    refresh(client, agent, refresh(client, agent, issued["refresh_token"]).json()["refresh_token"])
    events = AuditEvent.objects.filter(kind="token.refreshed_for_assertion")
    family = str(RefreshToken.objects.values_list("token_family", flat=True).distinct().get())
    assert [(e.client_id, e.detail) for e in events] == [(agent.client_id, {"assertion_iss": IDP, "family": family})] * 2


def test_a_code_flow_token_never_shows_an_assertion_issuer(client, project_a, confidential_client_a, alice_a):
    code, verifier = make_code(confidential_client_a, alice_a)
    issued = redeem(client, confidential_client_a, code, verifier).json()
    refreshed = refresh(client, confidential_client_a, issued["refresh_token"]).json()
    assert introspected_issuer(client, project_a, issued["access_token"]) is None
    assert introspected_issuer(client, project_a, refreshed["access_token"]) is None
    assert [t.claims for t in AccessToken.objects.all()] == [{}, {}]
    assert [r.assertion_iss for r in RefreshToken.objects.all()] == [None, None]
    assert not AuditEvent.objects.filter(kind="token.refreshed_for_assertion").exists()


def test_it_provisions_an_unknown_person_when_the_issuer_provisions(client, project_a, agent, trusted, idp_key):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(provision=True)
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent, email="new@acme.example")))
    assert response.status_code == 200, response.content
    user = User.objects.get(project=project_a, email="new@acme.example")
    assert AccessToken.objects.get().user == user
    assert AuditEvent.objects.get(kind="enterprise.identity_linked").detail["provisioned"] is True


def test_it_fetches_the_jwks_uri_and_refetches_it_for_a_new_kid(client, project_a, agent, docs, alice_a):
    first, rolled = new_key("k-old", "EC"), new_key("k-new", "EC")
    docs.serve("/jwks", public_jwks(first))
    trust(project_a, IssuerSettings(issuer=IDP, jwks_uri=docs.url("/jwks")), actor="test")
    assert present(client, project_a, agent, sign(first, claims_for(project_a, agent), alg="ES256")).status_code == 200
    docs.serve("/jwks", public_jwks(first, rolled))  # the IdP rolled its key over
    response = present(client, project_a, agent, sign(rolled, claims_for(project_a, agent), alg="ES256"))
    assert response.status_code == 200, response.content


def test_it_audits_the_token_with_the_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)))
    event = AuditEvent.objects.get(kind="token.issued_for_assertion")
    assert event.client_id == agent.client_id and event.detail["assertion_iss"] == IDP
    assert event.detail["subject"] == alice_a.subject and event.detail["resource"] == [project_a.default_resource]


def test_introspection_shows_the_assertion_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    token = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()["access_token"]
    response = post_form(client, f"/p/{project_a.slug}/oauth/introspect", {"token": token},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")
    body = response.json()
    assert body["active"] is True and body["assertion_iss"] == IDP
    assert body["sub"] == alice_a.subject and body["aud"] == project_a.default_resource


# -- discovery ---------------------------------------------------------------------------------------

def test_discovery_advertises_the_grant_only_when_the_project_trusts_an_issuer(client, project_a, idp_key):
    url = f"/p/{project_a.slug}/.well-known/oauth-authorization-server"
    before = client.get(url).json()
    assert GRANT not in before["grant_types_supported"] and "authorization_grant_profiles_supported" not in before
    trust(project_a, IssuerSettings(issuer=IDP, jwks=public_jwks(idp_key)), actor="test")
    after = client.get(url).json()
    assert GRANT in after["grant_types_supported"]
    assert after["authorization_grant_profiles_supported"] == ["urn:ietf:params:oauth:grant-profile:id-jag"]


# -- one test per check ---------------------------------------------------------------------------------

def test_it_requires_the_assertion(client, project_a, agent, trusted):
    assert_refused(present(client, project_a, agent, None), "invalid_request", says="assertion is required")


def test_it_refuses_a_repeated_assertion(client, project_a, agent, trusted, idp_key):
    signed = sign(idp_key, claims_for(project_a, agent))
    response = post_form(client, f"/p/{project_a.slug}/oauth/token",
                         [("grant_type", GRANT), ("assertion", signed), ("assertion", signed)],
                         HTTP_AUTHORIZATION=basic(agent))
    assert_refused(response, "invalid_request")


def test_it_refuses_a_wrong_client_secret(client, project_a, agent, trusted, idp_key):
    response = post_form(client, f"/p/{project_a.slug}/oauth/token",
                         {"grant_type": GRANT, "assertion": sign(idp_key, claims_for(project_a, agent))},
                         HTTP_AUTHORIZATION=basic(agent, "mcps_wrong"))
    assert_refused(response, "invalid_client", 401)


def test_it_refuses_a_client_not_registered_for_the_grant(client, project_a, confidential_client_a, trusted,
                                                         idp_key):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(client_ids=[])
    signed = sign(idp_key, claims_for(project_a, confidential_client_a))
    assert_refused(present(client, project_a, confidential_client_a, signed), "unauthorized_client")


def test_it_refuses_a_public_client(client, project_a, public_client_a, trusted, idp_key):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(client_ids=[])
    response = post_form(client, f"/p/{project_a.slug}/oauth/token",
                         {"grant_type": GRANT, "client_id": public_client_a.client_id,
                          "assertion": sign(idp_key, claims_for(project_a, public_client_a))})
    assert_refused(response, "unauthorized_client")


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "oauth-id-jag"])
def test_it_requires_the_id_jag_typ(client, project_a, agent, trusted, idp_key, alice_a, typ):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent), typ=typ))
    assert_refused(response, says="typ header must be oauth-id-jag+jwt")


def test_it_accepts_the_typ_with_its_media_type_prefix(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent), typ="application/OAuth-ID-JAG+JWT")
    assert present(client, project_a, agent, signed).status_code == 200


def test_it_refuses_something_that_is_not_a_jws(client, project_a, agent, trusted):
    assert_refused(present(client, project_a, agent, "not.a-jwt"), says="signed JWT")


def test_it_refuses_alg_none(client, project_a, agent, trusted, alice_a):
    def b64(value: dict) -> str:
        from jwcrypto.common import base64url_encode
        return base64url_encode(json.dumps(value))

    unsigned = f"{b64({'alg': 'none', 'typ': 'oauth-id-jag+jwt'})}.{b64(claims_for(project_a, agent))}."
    assert_refused(present(client, project_a, agent, unsigned), says="asymmetric")


def test_it_refuses_hs256_signed_with_the_issuers_public_key(client, project_a, agent, trusted, idp_key, alice_a):
    """The classic key confusion: the public key's bytes used as an HMAC secret."""
    public_pem = idp_key.export_to_pem(private_key=False, password=None)
    hmac_key = JWK.from_password(public_pem.decode())
    token = JWS(json.dumps(claims_for(project_a, agent)).encode())
    token.add_signature(hmac_key, alg="HS256",
                        protected={"alg": "HS256", "typ": "oauth-id-jag+jwt", "kid": idp_key.get("kid")})
    assert_refused(present(client, project_a, agent, token.serialize(compact=True)), says="asymmetric")


def test_it_refuses_an_algorithm_the_issuer_does_not_use(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(algorithms=["ES256"])
    assert_refused(present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))),
                   says="alg must be one of ES256")


def test_it_refuses_an_untrusted_issuer(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, iss="https://evil.example"))
    assert_refused(present(client, project_a, agent, signed), says="not an identity provider this project trusts")


def test_it_refuses_an_assertion_without_iss(client, project_a, agent, trusted, idp_key, alice_a):
    claims = claims_for(project_a, agent)
    del claims["iss"]
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says="iss is required")


def test_it_refuses_a_client_the_issuer_does_not_allow(client, project_a, agent, trusted, idp_key, alice_a):
    other = grant_client(project_a, "Another agent")
    signed = sign(idp_key, claims_for(project_a, other))
    assert_refused(present(client, project_a, other, signed), says="may not present assertions")


def test_it_refuses_a_signature_by_another_key(client, project_a, agent, trusted, alice_a):
    stranger = new_key("idp-1")  # same kid, not the IdP's key
    assert_refused(present(client, project_a, agent, sign(stranger, claims_for(project_a, agent))),
                   says="signature does not verify")


def test_it_refuses_an_id_jag_signed_by_another_trusted_issuers_key(client, project_a, agent, trusted, alice_a):
    """Two trusted IdPs: one's key cannot speak for the other (keys are per issuer)."""
    other_key = new_key("other-1")
    trust(project_a, IssuerSettings(issuer=OTHER_IDP, jwks=public_jwks(other_key)), actor="test")
    assert_refused(present(client, project_a, agent, sign(other_key, claims_for(project_a, agent))),
                   says="signature does not verify")


@pytest.mark.parametrize("aud", ["https://elsewhere.example", "{issuer}/", "{issuer}/oauth/token",
                                 ["{issuer}", "https://elsewhere.example"], None])
def test_it_requires_aud_to_be_exactly_our_issuer(client, project_a, agent, trusted, idp_key, alice_a, aud):
    def fill(value):
        return value.format(issuer=project_a.issuer) if isinstance(value, str) else value

    aud = [fill(a) for a in aud] if isinstance(aud, list) else fill(aud)
    claims = claims_for(project_a, agent, aud=aud)
    if aud is None:
        claims.pop("aud", None)
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says="aud must be")


def test_it_accepts_aud_as_an_array_of_our_issuer_alone(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, aud=[project_a.issuer]))
    assert present(client, project_a, agent, signed).status_code == 200


def test_it_requires_client_id_to_be_the_authenticated_client(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, client_id="someone-else"))
    assert_refused(present(client, project_a, agent, signed), says="client_id must be the authenticated client")


def test_it_requires_sub(client, project_a, agent, trusted, idp_key, alice_a):
    claims = claims_for(project_a, agent)
    del claims["sub"]
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says="sub is required")


@pytest.mark.parametrize("overrides, says", [
    (lambda now: {"exp": now - 120, "iat": now - 400}, "expired"),
    (lambda now: {"exp": None}, "exp is required"),
    (lambda now: {"iat": None}, "iat is required"),
    (lambda now: {"iat": now + 300, "exp": now + 600}, "in the future"),
    (lambda now: {"nbf": now + 300}, "in the future"),
    (lambda now: {"iat": now, "exp": now + 3600}, "lifetime must be at most"),
    (lambda now: {"exp": "soon"}, "NumericDate"),
])
def test_it_checks_the_times(client, project_a, agent, trusted, idp_key, alice_a, overrides, says):
    claims = claims_for(project_a, agent, **overrides(int(time.time())))
    claims = {k: v for k, v in claims.items() if v is not None}
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says=says)


def test_it_allows_a_small_clock_skew(client, project_a, agent, trusted, idp_key, alice_a):
    now = int(time.time())
    signed = sign(idp_key, claims_for(project_a, agent, iat=now + 10, nbf=now + 10, exp=now + 300))
    assert present(client, project_a, agent, signed).status_code == 200


def test_it_requires_jti(client, project_a, agent, trusted, idp_key, alice_a):
    claims = claims_for(project_a, agent)
    del claims["jti"]
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says="jti is required")


def test_it_refuses_a_replayed_jti(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent))
    assert present(client, project_a, agent, signed).status_code == 200
    replay = present(client, project_a, agent, signed)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert "already been used" in replay.json()["error_description"]
    assert AccessToken.objects.count() == 1
    assert AuditEvent.objects.get(kind="token.assertion_replayed").detail == {"assertion_iss": IDP}


@pytest.mark.parametrize("resource", ["https://unknown.example/mcp", None, ["https://mcp.alpha.example/mcp"]])
def test_it_requires_the_resource_claim_to_be_a_project_resource(client, project_a, agent, trusted, idp_key,
                                                                 alice_a, resource):
    claims = claims_for(project_a, agent, resource=resource)
    if resource is None:
        claims.pop("resource", None)
    assert_refused(present(client, project_a, agent, sign(idp_key, claims)), says="resource must be one of")


def test_it_refuses_a_resource_parameter_the_project_does_not_serve(client, project_a, agent, trusted, idp_key,
                                                                     alice_a):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)),
                       resource="https://unknown.example/mcp")
    assert_refused(response, "invalid_target")


def test_it_refuses_a_resource_parameter_beyond_the_assertion(client, project_a, agent, trusted, idp_key, alice_a):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)),
                       resource=project_a.resources[1])
    assert_refused(response, "invalid_target", says="not granted")


def test_the_token_is_bound_to_the_asserted_resource(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, resource=project_a.resources[1]))
    assert present(client, project_a, agent, signed, resource=project_a.resources[1]).status_code == 200
    assert AccessToken.objects.get().resource == [project_a.resources[1]]


def test_it_grants_requested_scopes_within_the_assertion(client, project_a, agent, trusted, idp_key, alice_a):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)), scope="mcp:tools")
    assert response.status_code == 200 and response.json()["scope"] == "mcp:tools"


def test_it_refuses_a_requested_scope_the_assertion_does_not_grant(client, project_a, agent, trusted, idp_key,
                                                                    alice_a):
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)),
                       scope="mcp:tools mcp:prompts")
    assert_refused(response, "invalid_scope", says="does not grant scope mcp:prompts")


def test_it_refuses_a_requested_scope_beyond_the_issuers_policy(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(scopes=["mcp:tools"])
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)),
                       scope="mcp:resources")
    assert_refused(response, "invalid_scope", says="not available")


def test_it_narrows_the_assertions_scopes_to_the_policy(client, project_a, agent, trusted, idp_key, alice_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(scopes=["mcp:tools"])
    response = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent)))
    assert response.status_code == 200 and response.json()["scope"] == "mcp:tools"


def test_it_refuses_a_malformed_scope_claim(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, scope=["mcp:tools"]))
    assert_refused(present(client, project_a, agent, signed), says="scope must be")


def test_it_refuses_an_unknown_person_without_provisioning(client, project_a, agent, trusted, idp_key):
    signed = sign(idp_key, claims_for(project_a, agent, email="stranger@acme.example"))
    assert_refused(present(client, project_a, agent, signed), says="no account in this project")
    assert not User.objects.filter(project=project_a).exists()


def test_it_does_not_link_by_an_unverified_email(client, project_a, agent, trusted, idp_key, alice_a):
    signed = sign(idp_key, claims_for(project_a, agent, email_verified=False))
    assert_refused(present(client, project_a, agent, signed), says="no account in this project")
    assert not EnterpriseIdentity.objects.exists()


def test_a_refused_assertion_does_not_spend_its_jti(client, project_a, agent, trusted, idp_key):
    """The jti is spent last: a person added after a refusal can use the same assertion."""
    signed = sign(idp_key, claims_for(project_a, agent))
    assert_refused(present(client, project_a, agent, signed), says="no account")
    User.objects.create_end_user(project_a, "alice@acme.example")
    assert present(client, project_a, agent, signed).status_code == 200


# -- tenants ----------------------------------------------------------------------------------------------

def test_it_refuses_an_id_jag_for_project_a_at_project_b(client, project_a, project_b, agent, trusted, idp_key):
    """Project B trusts the same IdP; an assertion addressed to A (aud, resource) is refused at B."""
    agent_b = grant_client(project_b)
    trust(project_b, IssuerSettings(issuer=IDP, jwks=public_jwks(idp_key)), actor="test")
    User.objects.create_end_user(project_b, "alice@acme.example")
    signed = sign(idp_key, claims_for(project_a, agent_b))
    assert_refused(present(client, project_b, agent_b, signed), says="aud must be")


def test_it_refuses_an_issuer_trusted_only_by_another_project(client, project_a, project_b, agent, trusted,
                                                             idp_key):
    agent_b = grant_client(project_b)
    User.objects.create_end_user(project_b, "alice@acme.example")
    signed = sign(idp_key, claims_for(project_b, agent_b))
    assert_refused(present(client, project_b, agent_b, signed), says="not an identity provider this project trusts")
    # ... and once B trusts some other IdP, A's issuer is still not B's
    trust(project_b, IssuerSettings(issuer=OTHER_IDP, jwks=public_jwks(new_key("o"))), actor="test")
    assert_refused(present(client, project_b, agent_b, signed), says="not an identity provider this project trusts")


def test_it_refuses_another_projects_client(client, project_a, project_b, agent, trusted, idp_key, alice_a):
    response = post_form(client, f"/p/{project_b.slug}/oauth/token",
                         {"grant_type": GRANT, "assertion": sign(idp_key, claims_for(project_a, agent))},
                         HTTP_AUTHORIZATION=basic(agent))
    assert_refused(response, "invalid_client", 401)


# -- registration ---------------------------------------------------------------------------------------

def register(http, project, body: dict, secret: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return http.post(f"/p/{project.slug}/api/oauth/register", data=json.dumps(body), content_type="application/json",
                     **headers)


def test_a_confidential_client_registers_the_grant_once_an_issuer_is_trusted(client, project_a, idp_key):
    """Secret DCR (confidential clients); the dashboard and `createclient` are tested in test_trusted_issuers."""
    body = {"client_name": "Agent", "grant_types": [GRANT], "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": ["http://127.0.0.1/callback"]}
    secret = project_a.registration_secret
    before = register(client, project_a, {**body, "grant_types": ["authorization_code", GRANT]}, secret)
    assert before.status_code == 201 and before.json()["grant_types"] == ["authorization_code"]
    trust(project_a, IssuerSettings(issuer=IDP, jwks=public_jwks(idp_key)), actor="test")
    after = register(client, project_a, body, secret)
    assert after.status_code == 201, after.content
    assert after.json()["grant_types"] == [GRANT] and after.json()["client_secret"]


def test_a_public_client_cannot_hold_the_grant(client, project_a, trusted):
    body = {"client_name": "Public agent", "grant_types": ["authorization_code", GRANT],
            "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1/callback"]}
    response = register(client, project_a, body)
    assert response.status_code == 201 and response.json()["grant_types"] == ["authorization_code"]
    stored = Application.objects.get(client_id=response.json()["client_id"])
    assert stored.narrowed == {"grant_types": [{"value": GRANT, "reason": "needs a confidential client"}]}


def test_removing_the_issuer_revokes_every_token_issued_from_its_assertions(
        client, project_a, agent, trusted, idp_key, alice_a, confidential_client_a):
    TrustedIssuer.objects.filter(pk=trusted.pk).update(refresh_tokens=True)
    issued = present(client, project_a, agent, sign(idp_key, claims_for(project_a, agent))).json()
    refreshed = refresh(client, agent, issued["refresh_token"]).json()
    code, verifier = make_code(confidential_client_a, alice_a)
    other = redeem(client, confidential_client_a, code, verifier).json()  # not from an assertion

    remove(TrustedIssuer.objects.get(pk=trusted.pk), actor="alice@example.com")

    secret = project_a.registration_secret
    for token in (issued["access_token"], refreshed["access_token"]):
        assert introspect(client, project_a, token, secret).json() == {"active": False}
    assert refresh(client, agent, refreshed["refresh_token"]).json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(claims__assertion_iss=IDP).exists()
    assert all(r.revoked for r in RefreshToken.objects.filter(assertion_iss=IDP))
    assert introspect(client, project_a, other["access_token"], secret).json()["active"] is True
    event = AuditEvent.objects.get(kind="enterprise.issuer_removed")
    assert event.detail == {"issuer": IDP, "tokens_revoked": 2}
