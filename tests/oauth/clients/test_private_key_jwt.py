"""private_key_jwt client authentication (RFC 7523 §2.2, §3; OpenID Connect Core §9).

Clients get in the real ways (open and secret DCR over HTTP, a CIMD document and its `jwks_uri`
served by a real local TLS server); assertions are signed with jwcrypto keys made in the test.
Every refusal is 401 `invalid_client` with nothing issued. The replay test across two web
workers runs the server as shipped on this test database and Redis.
"""

import base64
import json
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from django.contrib.auth.hashers import check_password
from django.db import connection
from jwcrypto.jwk import JWK
from jwcrypto.jwt import JWT

from oauth.clients.lookup import load_client
from oauth.models import AccessToken, Application
from tests import servers
from tests.oauth.clients.test_cimd import DocumentServer
from tests.token_support import basic, make_code, post_form

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT_URI = "http://127.0.0.1/callback"
ROOT = Path(__file__).resolve().parents[3]


# -- keys, assertions and clients ----------------------------------------------------------------------

def new_key(kid: str = "k1", kty: str = "EC") -> JWK:
    if kty == "RSA":
        return JWK.generate(kty="RSA", size=2048, kid=kid)
    if kty == "OKP":
        return JWK.generate(kty="OKP", crv="Ed25519", kid=kid)
    return JWK.generate(kty="EC", crv="P-256", kid=kid)


def public_jwks(*keys: JWK) -> dict:
    return {"keys": [key.export_public(as_dict=True) for key in keys]}


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(client_id: str, aud, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
              "jti": secrets.token_urlsafe(16), **overrides}
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: JWK, claims: dict, alg: str = "ES256") -> str:
    token = JWT(header={"alg": alg, "kid": key.get("kid"), "typ": "JWT"}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def assertion(key: JWK, client_id: str, aud, alg: str = "ES256", **overrides) -> str:
    return sign(key, claims_for(client_id, aud, **overrides), alg)


def token_endpoint(project) -> str:
    return f"{project.issuer}/oauth/token"


def with_assertion(data: dict, signed: str) -> dict:
    return {**data, "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def register(http, project, body: dict, secret: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return http.post(f"/p/{project.slug}/api/oauth/register", data=json.dumps(body),
                     content_type="application/json", **headers)


def key_client_body(**fields) -> dict:
    return {"client_name": "Keyed agent", "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt", **fields}


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def dcr_client(client, project_a, key) -> Application:
    """An open-DCR client with an inline `jwks`."""
    response = register(client, project_a, key_client_body(jwks=public_jwks(key)))
    assert response.status_code == 201, response.content
    return Application.objects.get(project=project_a, client_id=response.json()["client_id"])


@pytest.fixture
def backend_client(client, project_a, key) -> Application:
    """A secret-DCR confidential client using client_credentials with private_key_jwt."""
    body = key_client_body(jwks=public_jwks(key), grant_types=["client_credentials"], redirect_uris=[])
    response = register(client, project_a, body, secret=project_a.registration_secret)
    assert response.status_code == 201, response.content
    return Application.objects.get(project=project_a, client_id=response.json()["client_id"])


@pytest.fixture
def docs(tmp_path, settings):
    server = DocumentServer(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the server is on 127.0.0.1
    yield server
    server.stop()


@pytest.fixture
def cimd_url(docs, key) -> str:
    """A CIMD client (ChatGPT-like) whose document names a `jwks_uri` on the same TLS server."""
    docs.serve("/jwks.json", public_jwks(key))
    return docs.serve_client(redirect_uris=[REDIRECT_URI], token_endpoint_auth_method="private_key_jwt",
                             jwks_uri=docs.url("/jwks.json"))


def redeem_code(http, client: Application, user, signed: str, **extra):
    code, verifier = make_code(client, user, redirect_uri=REDIRECT_URI)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI, **extra}
    return post_form(http, f"/p/{client.project.slug}/oauth/token", with_assertion(data, signed))


def client_credentials(http, project, signed: str, **headers):
    data = with_assertion({"grant_type": "client_credentials", "scope": "mcp:tools"}, signed)
    return post_form(http, f"/p/{project.slug}/oauth/token", data, **headers)


def assert_refused(response, *, says: str = "") -> None:
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert says in response.json().get("error_description", "")
    assert not AccessToken.objects.exists()


# -- registration ---------------------------------------------------------------------------------------

def test_it_registers_an_open_client_with_inline_public_keys_and_no_secret(client, project_a, key):
    response = register(client, project_a, key_client_body(jwks=public_jwks(key)))

    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["jwks"] == public_jwks(key)
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    row = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert row.client_type == "confidential" and row.registration_path == "open"
    assert row.jwks == public_jwks(key) and row.jwks_uri == ""
    assert "jwks" not in row.metadata


def test_it_registers_a_client_with_a_jwks_uri(client, project_a):
    response = register(client, project_a, key_client_body(jwks_uri="https://agent.example/jwks.json"))

    assert response.status_code == 201
    assert response.json()["jwks_uri"] == "https://agent.example/jwks.json"
    row = Application.objects.get(project=project_a, client_id=response.json()["client_id"])
    assert row.jwks_uri == "https://agent.example/jwks.json" and row.jwks is None


@pytest.mark.parametrize("fields,says", [
    ({"jwks": {"keys": [new_key().export_private(as_dict=True)]}}, "private key"),
    ({"jwks": {"keys": [JWK.generate(kty="oct", size=256).export(as_dict=True)]}}, "asymmetric"),
    ({"jwks": {"keys": [JWK.generate(kty="RSA", size=1024).export_public(as_dict=True)]}}, "2048"),
    ({"jwks": {"keys": []}}, "JWK Set"),
    ({"jwks": [new_key().export_public(as_dict=True)]}, "JWK Set"),
    ({"jwks_uri": "http://agent.example/jwks.json"}, "jwks_uri"),
    ({"jwks": public_jwks(new_key()), "jwks_uri": "https://agent.example/jwks.json"}, "exactly one"),
])
def test_it_refuses_keys_it_cannot_trust(client, project_a, fields, says):
    response = register(client, project_a, key_client_body(**fields))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert says in response.json()["error_description"]
    assert not Application.objects.filter(project=project_a).exists()


def test_it_narrows_private_key_jwt_without_keys_to_the_open_default(client, project_a):
    """RFC 7591 §3.2.1: with neither jwks nor jwks_uri the method cannot be kept; open DCR's default
    (`none`) replaces it, and the 201 response says so."""
    response = register(client, project_a, key_client_body())

    assert response.status_code == 201
    assert response.json()["token_endpoint_auth_method"] == "none"
    row = Application.objects.get(project=project_a, client_id=response.json()["client_id"])
    assert row.narrowed == {"token_endpoint_auth_method": [{"value": "private_key_jwt", "reason": "needs jwks or jwks_uri"}]}


def test_a_secret_client_moving_to_keys_loses_its_secret(client, project_a, key):
    info = register(client, project_a, key_client_body(token_endpoint_auth_method="client_secret_basic",
                                                       grant_types=["client_credentials"], redirect_uris=[]),
                    secret=project_a.registration_secret).json()
    update = {**key_client_body(jwks=public_jwks(key), grant_types=["client_credentials"], redirect_uris=[]),
              "client_id": info["client_id"]}

    response = client.put(info["registration_client_uri"].removeprefix("http://127.0.0.1:8000"),
                          data=json.dumps(update), content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {info['registration_access_token']}")

    assert response.status_code == 200, response.content
    assert "client_secret" not in response.json() and "client_secret_expires_at" not in response.json()
    assert response.json()["jwks"] == public_jwks(key)
    row = Application.objects.get(client_id=info["client_id"])
    assert not check_password(info["client_secret"], row.client_secret)
    refused = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                        HTTP_AUTHORIZATION=basic(row, info["client_secret"]))
    assert_refused(refused, says="registered for private_key_jwt")
    assert client_credentials(client, project_a, assertion(key, row.client_id, project_a.issuer)).status_code == 200


def test_it_keeps_a_cimd_client_with_a_jwks_uri(cimd_url, project_a, docs):
    row = load_client(project_a, cimd_url)

    assert row is not None and row.client_type == "confidential"
    assert row.metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert row.jwks_uri == docs.url("/jwks.json")


def test_it_advertises_the_methods_and_algorithms_of_the_registry(client, project_a):
    doc = client.get("/p/alpha/.well-known/oauth-authorization-server").json()

    algs = ["RS256", "PS256", "ES256", "EdDSA"]
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in doc["revocation_endpoint_auth_methods_supported"]
    assert set(doc["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "bearer"}
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == algs
    assert doc["revocation_endpoint_auth_signing_alg_values_supported"] == algs
    assert doc["introspection_endpoint_auth_signing_alg_values_supported"] == algs
    assert "none" not in algs and "HS256" not in algs


# -- the token endpoint ---------------------------------------------------------------------------------

def test_it_redeems_a_code_for_a_cimd_client_with_keys_at_its_jwks_uri(client, cimd_url, project_a, end_user_a,
                                                                      key, docs):
    row = load_client(project_a, cimd_url)

    first = redeem_code(client, row, end_user_a, assertion(key, cimd_url, project_a.issuer), client_id=cimd_url)
    second = redeem_code(client, row, end_user_a, assertion(key, cimd_url, token_endpoint(project_a)))

    assert first.status_code == 200, first.content
    assert second.status_code == 200, second.content
    assert first.json()["token_type"] == "Bearer" and "refresh_token" in first.json()
    assert AccessToken.objects.filter(application=row, user=end_user_a).count() == 2
    assert docs.hits["/jwks.json"] == 1  # the second came from the shared cache


def test_it_redeems_a_code_for_a_dcr_client_with_inline_jwks(client, dcr_client, project_a, end_user_a, key):
    # RFC 7523 §3: client_id may be left out; the assertion's sub names the client.
    response = redeem_code(client, dcr_client, end_user_a, assertion(key, dcr_client.client_id, token_endpoint(project_a)))

    assert response.status_code == 200, response.content
    assert AccessToken.objects.filter(application=dcr_client).count() == 1


@pytest.mark.parametrize("kty,alg", [("RSA", "RS256"), ("RSA", "PS256"), ("OKP", "EdDSA")])
def test_it_accepts_each_advertised_algorithm(client, project_a, end_user_a, kty, alg):
    key = new_key("other-" + alg, kty)
    body = register(client, project_a, key_client_body(jwks=public_jwks(key))).json()
    row = Application.objects.get(project=project_a, client_id=body["client_id"])

    response = redeem_code(client, row, end_user_a, assertion(key, row.client_id, project_a.issuer, alg=alg))

    assert response.status_code == 200, response.content


def test_it_accepts_an_audience_array_holding_the_issuer(client, dcr_client, project_a, end_user_a, key):
    signed = assertion(key, dcr_client.client_id, ["https://elsewhere.example", project_a.issuer])

    assert redeem_code(client, dcr_client, end_user_a, signed).status_code == 200


def test_it_grants_client_credentials_to_a_secret_registered_keyed_client(client, backend_client, project_a, key):
    response = client_credentials(client, project_a, assertion(key, backend_client.client_id, project_a.issuer))

    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "mcp:tools"
    assert AccessToken.objects.get(application=backend_client).user is None


def test_it_refetches_the_jwks_uri_once_for_an_unknown_kid(client, cimd_url, project_a, end_user_a, key, docs):
    row = load_client(project_a, cimd_url)
    assert redeem_code(client, row, end_user_a, assertion(key, cimd_url, project_a.issuer)).status_code == 200
    rotated = new_key("k2")
    docs.serve("/jwks.json", public_jwks(key, rotated))

    response = redeem_code(client, row, end_user_a, assertion(rotated, cimd_url, project_a.issuer))

    assert response.status_code == 200, response.content
    assert docs.hits["/jwks.json"] == 2


# -- refusals: 401 invalid_client, nothing issued ---------------------------------------------------------

@pytest.mark.parametrize("overrides,says", [
    (lambda now: {"aud": "https://other-issuer.example"}, "audience must be the issuer or the token endpoint"),
    (lambda now: {"aud": ["https://other-issuer.example"]}, "audience"),
    (lambda now: {"exp": now - 120, "iat": now - 180}, "expired"),
    (lambda now: {"exp": now + 3600}, "at most 300 seconds"),
    (lambda now: {"iat": now - 400, "exp": now + 30}, "at most 300 seconds"),
    (lambda now: {"exp": None}, "exp is required"),
    (lambda now: {"exp": float("nan")}, "NumericDate"),
    (lambda now: {"exp": str(now + 60)}, "NumericDate"),
    (lambda now: {"jti": None}, "jti is required"),
    (lambda now: {"iss": "someone-else"}, "iss and sub"),
    (lambda now: {"sub": "someone-else"}, "iss and sub"),
], ids=["wrong-aud", "wrong-aud-array", "expired", "exp-too-far", "lifetime-too-long", "no-exp", "nan-exp", "string-exp", "no-jti",
        "iss-not-client", "sub-not-client"])
def test_it_refuses_an_assertion_with_bad_claims(client, dcr_client, project_a, end_user_a, key, overrides, says):
    claims = overrides(int(time.time()))
    aud = claims.pop("aud", project_a.issuer)
    signed = sign(key, claims_for(dcr_client.client_id, aud, **claims))

    assert_refused(redeem_code(client, dcr_client, end_user_a, signed, client_id=dcr_client.client_id), says=says)


def test_it_refuses_a_replayed_jti(client, dcr_client, project_a, end_user_a, key):
    signed = assertion(key, dcr_client.client_id, project_a.issuer)
    assert redeem_code(client, dcr_client, end_user_a, signed).status_code == 200

    replay = redeem_code(client, dcr_client, end_user_a, signed)

    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert "already been used" in replay.json()["error_description"]
    assert AccessToken.objects.filter(application=dcr_client).count() == 1


def test_it_refuses_alg_none(client, dcr_client, project_a, end_user_a):
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims_for(dcr_client.client_id, project_a.issuer))}."

    assert_refused(redeem_code(client, dcr_client, end_user_a, unsigned), says="RS256, PS256, ES256, EdDSA")


def test_it_refuses_hs256_signed_with_the_public_key(client, project_a, end_user_a):
    rsa = new_key("rsa", "RSA")
    row = Application.objects.get(client_id=register(client, project_a, key_client_body(jwks=public_jwks(rsa)))
                                  .json()["client_id"])
    # The classic confusion attack: the public key's own bytes as an HMAC secret.
    as_secret = JWK(kty="oct", k=b64(rsa.export_to_pem()), kid="rsa")
    forged = sign(as_secret, claims_for(row.client_id, project_a.issuer), alg="HS256")

    assert_refused(redeem_code(client, row, end_user_a, forged), says="must be signed with one of")


def test_it_refuses_a_key_not_in_the_clients_jwks(client, dcr_client, project_a, end_user_a):
    for stranger in (new_key("k1"), new_key("unknown-kid")):  # same kid, other key; unknown kid
        signed = assertion(stranger, dcr_client.client_id, project_a.issuer)
        assert_refused(redeem_code(client, dcr_client, end_user_a, signed), says="does not verify")


def test_it_refuses_a_jwks_uri_at_a_private_address_without_naming_it(client, project_a, end_user_a, docs, key,
                                                                      settings):
    docs.serve("/jwks.json", public_jwks(key))
    body = register(client, project_a, key_client_body(jwks_uri=docs.url("/jwks.json"))).json()
    row = Application.objects.get(project=project_a, client_id=body["client_id"])
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False

    response = redeem_code(client, row, end_user_a, assertion(key, row.client_id, project_a.issuer))

    assert_refused(response, says="jwks_uri could not be fetched")
    assert "127.0.0.1" not in response.content.decode() and str(docs.port) not in response.content.decode()
    assert "/jwks.json" not in docs.hits


def test_it_refuses_a_client_secret_from_a_private_key_jwt_client(client, backend_client, project_a):
    response = post_form(client, f"/p/{project_a.slug}/oauth/token", {
        "grant_type": "client_credentials", "client_id": backend_client.client_id, "client_secret": "mcpcs_guess"})

    assert_refused(response, says="registered for private_key_jwt")


def test_it_refuses_an_assertion_from_a_client_registered_with_a_secret(client, confidential_client_a, project_a, key):
    signed = assertion(key, confidential_client_a.client_id, project_a.issuer)

    assert_refused(client_credentials(client, project_a, signed), says="registered for client_secret_basic")


def test_it_refuses_two_methods_in_one_request(client, backend_client, project_a, key):
    signed = assertion(key, backend_client.client_id, project_a.issuer)

    response = client_credentials(client, project_a, signed, HTTP_AUTHORIZATION=basic(backend_client, "x"))

    assert_refused(response, says="exactly one client authentication method")


def test_it_refuses_an_assertion_without_the_assertion_type(client, backend_client, project_a, key):
    data = {"grant_type": "client_credentials",
            "client_assertion": assertion(key, backend_client.client_id, project_a.issuer)}

    assert_refused(post_form(client, f"/p/{project_a.slug}/oauth/token", data), says=ASSERTION_TYPE)


def test_it_refuses_a_repeated_assertion_parameter(client, backend_client, project_a, key):
    signed = assertion(key, backend_client.client_id, project_a.issuer)
    data = [("grant_type", "client_credentials"), ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", signed), ("client_assertion", signed)]

    response = post_form(client, f"/p/{project_a.slug}/oauth/token", data)

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert not AccessToken.objects.exists()


# -- other projects -------------------------------------------------------------------------------------

def test_it_refuses_a_client_of_another_project(client, dcr_client, project_b, key):
    signed = assertion(key, dcr_client.client_id, project_b.issuer)

    assert_refused(client_credentials(client, project_b, signed))


def test_it_refuses_an_assertion_addressed_to_another_project(client, cimd_url, project_a, project_b, end_user_b,
                                                             key):
    load_client(project_a, cimd_url)
    row_b = load_client(project_b, cimd_url)  # the same CIMD URL is a client of both projects
    code, verifier = make_code(row_b, end_user_b, redirect_uri=REDIRECT_URI)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT_URI}

    response = post_form(client, f"/p/{project_b.slug}/oauth/token",
                         with_assertion(data, assertion(key, cimd_url, project_a.issuer)))

    assert_refused(response, says="audience")


# -- revocation and introspection -------------------------------------------------------------------------

def test_it_authenticates_revocation(client, dcr_client, project_a, end_user_a, key):
    issued = redeem_code(client, dcr_client, end_user_a, assertion(key, dcr_client.client_id, project_a.issuer)).json()
    data = with_assertion({"token": issued["access_token"]}, assertion(key, dcr_client.client_id, project_a.issuer))

    response = post_form(client, f"/p/{project_a.slug}/oauth/revoke", data)

    assert response.status_code == 200
    assert not AccessToken.objects.filter(application=dcr_client).exists()


def test_it_refuses_revocation_with_a_bad_assertion(client, dcr_client, project_a, end_user_a, key):
    issued = redeem_code(client, dcr_client, end_user_a, assertion(key, dcr_client.client_id, project_a.issuer)).json()
    data = with_assertion({"token": issued["access_token"]},
                          assertion(key, dcr_client.client_id, "https://other-issuer.example"))

    response = post_form(client, f"/p/{project_a.slug}/oauth/revoke", data)

    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert AccessToken.objects.filter(application=dcr_client).count() == 1


def test_it_authenticates_introspection_by_a_secret_registered_keyed_client(client, backend_client, project_a, key):
    issued = client_credentials(client, project_a, assertion(key, backend_client.client_id, project_a.issuer)).json()
    data = with_assertion({"token": issued["access_token"]}, assertion(key, backend_client.client_id, project_a.issuer))

    response = post_form(client, f"/p/{project_a.slug}/oauth/introspect", data)

    assert response.status_code == 200, response.content
    assert response.json()["active"] is True and response.json()["client_id"] == backend_client.client_id


def test_it_refuses_introspection_with_a_replayed_assertion(client, backend_client, project_a, key):
    issued = client_credentials(client, project_a, assertion(key, backend_client.client_id, project_a.issuer)).json()
    signed = assertion(key, backend_client.client_id, project_a.issuer)
    url = f"/p/{project_a.slug}/oauth/introspect"
    assert post_form(client, url, with_assertion({"token": issued["access_token"]}, signed)).status_code == 200

    replay = post_form(client, url, with_assertion({"token": issued["access_token"]}, signed))

    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    assert "active" not in replay.json()


def test_a_self_registered_keyed_client_cannot_introspect(client, dcr_client, project_a, end_user_a, key):
    issued = redeem_code(client, dcr_client, end_user_a, assertion(key, dcr_client.client_id, project_a.issuer)).json()
    data = with_assertion({"token": issued["access_token"]}, assertion(key, dcr_client.client_id, project_a.issuer))

    response = post_form(client, f"/p/{project_a.slug}/oauth/introspect", data)

    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


# -- two web workers: the jti store is shared -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_fresh(url: str, data: dict) -> int:
    """One POST on a new connection (urllib opens one per request)."""
    request = urllib.request.Request(url, data=urlencode(data).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def two_workers(transactional_db, tmp_path):
    """The server as shipped, 2 workers, on this test's PostgreSQL database and Redis; yields its origin."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    database = urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    env = {**os.environ, "DATABASE_URL": urlunsplit(database), "PUBLIC_URL": origin, "DEBUG": "false",
           "LOG_LEVEL": "WARNING", "MCPAUTH_VAR_DIR": str(tmp_path / "var")}
    process = servers.start_server(env, port, tmp_path / "server.log")
    try:
        yield origin
    finally:
        servers.stop(process)


@pytest.mark.postgres
@pytest.mark.redis
def test_it_accepts_an_assertion_once_across_two_web_workers(two_workers, project_a, key):
    row = Application.objects.create(
        project=project_a, name="Keyed backend", client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS, registration_path=Application.Path.SECRET,
        client_secret="mcpauth_hmac$-$none", jwks=public_jwks(key),
        metadata={"client_name": "Keyed backend", "grant_types": ["client_credentials"],
                  "token_endpoint_auth_method": "private_key_jwt"})
    issuer = f"{two_workers}/p/{project_a.slug}"
    data = with_assertion({"grant_type": "client_credentials"}, assertion(key, row.client_id, issuer))

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda _: post_fresh(f"{issuer}/oauth/token", data), range(2)))

    assert statuses == [200, 401]
    assert AccessToken.objects.filter(application=row).count() == 1
