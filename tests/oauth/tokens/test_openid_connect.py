"""OpenID Connect Core 1.0 per project (issue 18; API.md "Tokens"): ID tokens at the token endpoint,
`prompt` and `max_age` at the authorization endpoint, the switch and what discovery and JWKS say."""

import base64
import hashlib
import json
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from oauth.models import Application, Consent, Grant, RefreshToken
from projects.models import Project, SigningKey, User
from tests.authz import LOOPBACK_REDIRECT, authorize_path, query_of, without_query
from tests.conftest import PASSWORD
from tests.oidc_support import (
    authorize_with_sign_in,
    code_of,
    redeem_code,
    sign_in_on_the_page,
    turn_on_openid,
    verified_claims,
)
from tests.token_support import basic, post_form, refresh, token_url

pytestmark = pytest.mark.django_db

OIDC_FIELDS = {"userinfo_endpoint", "subject_types_supported", "id_token_signing_alg_values_supported",
               "claims_supported", "prompt_values_supported"}


@pytest.fixture
def oidc_a(project_a):
    turn_on_openid(project_a)
    return project_a


@pytest.fixture
def eve(oidc_a):
    return User.objects.create_end_user(oidc_a, "eve@example.com", PASSWORD)


@pytest.fixture
def rp(oidc_a):
    """A public client of project A (open registration) that may ask for every scope."""
    return Application.objects.create(
        project=oidc_a, name="Relying party", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="http://127.0.0.1/callback",
        registration_path=Application.Path.OPEN,
        metadata={"client_name": "Relying party", "grant_types": ["authorization_code", "refresh_token"],
                  "token_endpoint_auth_method": "none"})


def id_token_for(client, project, app, user, **params) -> tuple[dict, dict, dict]:
    """Sign in and allow in the browser, redeem the code: (token response, ID token header, claims)."""
    code = authorize_with_sign_in(client, project, app, user, **params)
    response = redeem_code(client, app, code)
    assert response.status_code == 200, response.content
    body = response.json()
    header, claims = verified_claims(client, project, body["id_token"])
    return body, header, claims


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


# --- The ID token ----------------------------------------------------------------------------------


def test_it_issues_an_id_token_signed_rs256_with_the_projects_key(client, oidc_a, rp, eve):
    body, header, claims = id_token_for(client, oidc_a, rp, eve, scope="openid mcp:tools")

    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    assert header["kid"] == SigningKey.current(oidc_a, "RS256").kid
    assert claims["iss"] == "http://127.0.0.1:8000/p/alpha"
    assert claims["aud"] == rp.client_id
    assert claims["sub"] == eve.subject
    assert claims["exp"] == claims["iat"] + 3600
    assert body["scope"] == "openid mcp:tools" and body["token_type"] == "Bearer"


def test_it_signs_es256_for_a_client_that_registered_it(client, oidc_a, rp, eve):
    rp.metadata = {**rp.metadata, "id_token_signed_response_alg": "ES256"}
    rp.save()

    _, header, claims = id_token_for(client, oidc_a, rp, eve, scope="openid")

    assert header["alg"] == "ES256" and header["kid"] == SigningKey.current(oidc_a, "ES256").kid
    assert claims["sub"] == eve.subject


def test_it_echoes_the_nonce(client, oidc_a, rp, eve):
    _, _, claims = id_token_for(client, oidc_a, rp, eve, scope="openid", nonce="n-0S6_WzA2Mj")

    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert Grant.objects.get(application=rp).nonce == "n-0S6_WzA2Mj"


def test_it_sends_no_nonce_when_none_was_asked_for(client, oidc_a, rp, eve):
    _, _, claims = id_token_for(client, oidc_a, rp, eve, scope="openid")
    assert "nonce" not in claims


def test_at_hash_is_the_left_half_of_the_access_tokens_sha256(client, oidc_a, rp, eve):
    body, _, claims = id_token_for(client, oidc_a, rp, eve, scope="openid")
    assert claims["at_hash"] == at_hash(body["access_token"])


def test_auth_time_is_when_the_end_user_signed_in(client, oidc_a, rp, eve):
    before = int(time.time())
    code = authorize_with_sign_in(client, oidc_a, rp, eve, scope="openid")
    after = int(time.time())
    _, claims = verified_claims(client, oidc_a, redeem_code(client, rp, code).json()["id_token"])

    assert before <= claims["auth_time"] <= after
    assert int(Grant.objects.get(application=rp).auth_time.timestamp()) == claims["auth_time"]


def test_sub_is_stable_per_project_and_end_user(client, oidc_a, rp, eve, project_b):
    _, _, first = id_token_for(client, oidc_a, rp, eve, scope="openid")
    client.logout()
    _, _, second = id_token_for(client, oidc_a, rp, eve, scope="openid")
    turn_on_openid(project_b)
    eve_at_b = User.objects.create_end_user(project_b, "eve@example.com", PASSWORD)
    rp_b = Application.objects.create(
        project=project_b, name="RP B", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="http://127.0.0.1/callback",
        registration_path=Application.Path.OPEN, metadata={"token_endpoint_auth_method": "none"})
    _, _, at_b = id_token_for(client, project_b, rp_b, eve_at_b, scope="openid")

    assert first["sub"] == second["sub"] == eve.subject
    assert at_b["sub"] == eve_at_b.subject != eve.subject
    assert at_b["iss"] == "http://127.0.0.1:8000/p/bravo"


def test_email_and_name_only_with_their_scopes(client, oidc_a, rp, eve):
    eve.name = "Eve Example"
    eve.save()
    _, _, bare = id_token_for(client, oidc_a, rp, eve, scope="openid")
    client.logout()
    _, _, full = id_token_for(client, oidc_a, rp, eve, scope="openid email profile")

    assert set(bare) == {"iss", "sub", "aud", "exp", "iat", "auth_time", "at_hash", "jti"}
    assert full["email"] == "eve@example.com" and full["name"] == "Eve Example"
    assert full["email_verified"] is False  # truthful: eve never opened a verification link


def test_email_verified_is_true_once_verified(client, oidc_a, rp, eve):
    User.objects.filter(pk=eve.pk).update(email_verified_at=timezone.now())
    eve.refresh_from_db()
    _, _, claims = id_token_for(client, oidc_a, rp, eve, scope="openid email")
    assert claims["email"] == "eve@example.com" and claims["email_verified"] is True


def test_a_claim_the_end_user_has_no_value_for_is_left_out(client, oidc_a, rp):
    nameless = User.objects.create_end_user(oidc_a, "nameless@example.com", PASSWORD)
    _, _, claims = id_token_for(client, oidc_a, rp, nameless, scope="openid email profile")

    assert claims["email"] == "nameless@example.com"
    assert "name" not in claims


def test_it_issues_no_id_token_without_the_openid_scope(client, oidc_a, rp, eve):
    code = authorize_with_sign_in(client, oidc_a, rp, eve, scope="mcp:tools")
    body = redeem_code(client, rp, code).json()

    assert "id_token" not in body and body["scope"] == "mcp:tools"


def test_openid_is_never_a_default_scope(client, oidc_a, rp, eve):
    code = authorize_with_sign_in(client, oidc_a, rp, eve, scope=None)
    body = redeem_code(client, rp, code).json()

    assert "id_token" not in body
    assert body["scope"] == "mcp:tools mcp:resources mcp:prompts offline_access"


def test_a_project_without_openid_connect_refuses_the_scope(client, project_a, public_client_a, end_user_a):
    response = client.get(authorize_path(project_a, public_client_a, scope="openid"))

    assert query_of(response["Location"])["error"] == "invalid_scope"
    assert not Grant.objects.exists()


def test_a_project_without_openid_connect_issues_no_id_token_even_for_its_own_openid_scope(
        client, project_a, public_client_a, end_user_a):
    project_a.scopes = [*project_a.scopes, {"name": "openid", "description": "our own"}]
    project_a.save()
    code = authorize_with_sign_in(client, project_a, public_client_a, end_user_a, scope="openid")
    body = redeem_code(client, public_client_a, code).json()

    assert body["scope"] == "openid" and "id_token" not in body


def test_client_credentials_cannot_have_openid(client, oidc_a):
    from tests.conftest import _confidential_client

    backend = _confidential_client(oidc_a)
    response = post_form(client, token_url(oidc_a), {"grant_type": "client_credentials", "scope": "openid"},
                         HTTP_AUTHORIZATION=basic(backend))

    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_a_refresh_returns_a_new_id_token_with_the_original_auth_time_and_no_nonce(client, oidc_a, rp, eve):
    first, _, original = id_token_for(client, oidc_a, rp, eve, scope="openid offline_access", nonce="abc")
    response = refresh(client, rp, first["refresh_token"])

    assert response.status_code == 200
    body = response.json()
    _, renewed = verified_claims(client, oidc_a, body["id_token"])
    # OpenID Connect Core §12.2: same iss, sub, aud and auth_time; a new iat; no nonce.
    assert (renewed["iss"], renewed["sub"], renewed["aud"]) == (original["iss"], original["sub"], original["aud"])
    assert renewed["auth_time"] == original["auth_time"]
    assert "nonce" not in renewed and renewed["at_hash"] == at_hash(body["access_token"])
    assert RefreshToken.objects.filter(revoked__isnull=True).get().auth_time == \
        Grant.objects.get(application=rp).auth_time


def test_a_refresh_without_openid_has_no_id_token(client, oidc_a, rp, eve):
    code = authorize_with_sign_in(client, oidc_a, rp, eve, scope="mcp:tools offline_access")
    body = refresh(client, rp, redeem_code(client, rp, code).json()["refresh_token"]).json()
    assert "id_token" not in body


# --- prompt and max_age (OpenID Connect Core §3.1.2.1, §3.1.2.6) --------------------------------------


def signed_in_ago(client, project, user, seconds: int) -> None:
    """What the hosted sign-in leaves in the session, as if it happened `seconds` ago."""
    session = client.session
    session[f"enduser:{project.pk}"] = user.pk
    session[f"enduser-hash:{project.pk}"] = user.get_session_auth_hash()
    session[f"enduser-at:{project.pk}"] = int(time.time()) - seconds
    session.save()


def redirect_error(response) -> str:
    assert response.status_code == 302
    assert without_query(response["Location"]) == LOOPBACK_REDIRECT
    params = query_of(response["Location"])
    assert params["iss"] == "http://127.0.0.1:8000/p/alpha" and params["state"] == "st-123"
    return params["error"]


def test_prompt_none_without_a_signed_in_end_user_is_login_required(client, oidc_a, rp):
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="none"))
    assert redirect_error(response) == "login_required"
    assert not Grant.objects.exists()


def test_prompt_none_without_consent_is_consent_required(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 5)
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="none"))
    assert redirect_error(response) == "consent_required"
    assert not Grant.objects.exists()


def test_prompt_none_with_a_session_and_consent_returns_a_code_silently(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 5)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="none"))
    assert Grant.objects.get(code=code_of(response)).user == eve


def test_prompt_none_with_a_sign_in_older_than_max_age_is_login_required(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 600)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="none", max_age="60"))
    assert redirect_error(response) == "login_required"


def test_prompt_login_asks_a_signed_in_end_user_to_sign_in_again(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 600)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="login"))
    assert not Grant.objects.exists()

    before = int(time.time())
    code = code_of(sign_in_on_the_page(client, response, eve.email))
    _, claims = verified_claims(client, oidc_a, redeem_code(client, rp, code).json()["id_token"])
    assert claims["auth_time"] >= before


def test_prompt_consent_asks_again_although_remembered(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 5)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="consent"))
    assert response.status_code == 302 and "/oauth/consent?" in response["Location"]
    assert not Grant.objects.exists()


def test_max_age_sends_an_older_sign_in_back_to_the_sign_in_page(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 600)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", max_age="300"))
    assert response.status_code == 302 and "/oauth/signin?" in response["Location"]
    assert not Grant.objects.exists()


def test_max_age_lets_a_recent_sign_in_through_with_its_auth_time(client, oidc_a, rp, eve):
    signed_in_ago(client, oidc_a, eve, 10)
    Consent.remember(eve, rp, ["openid"])
    response = client.get(authorize_path(oidc_a, rp, scope="openid", max_age="300"))
    code = code_of(response)
    _, claims = verified_claims(client, oidc_a, redeem_code(client, rp, code).json()["id_token"])
    assert claims["auth_time"] == client.session[f"enduser-at:{oidc_a.pk}"]


@pytest.mark.parametrize("max_age", ["-1", "soon", "1.5", "99999999999"])
def test_a_malformed_max_age_is_invalid_request(client, oidc_a, rp, max_age):
    response = client.get(authorize_path(oidc_a, rp, scope="openid", max_age=max_age))
    assert redirect_error(response) == "invalid_request"


def test_prompt_none_with_another_value_is_invalid_request(client, oidc_a, rp):
    response = client.get(authorize_path(oidc_a, rp, scope="openid", prompt="none login"))
    assert redirect_error(response) == "invalid_request"


def test_a_nonce_longer_than_the_code_can_keep_is_invalid_request(client, oidc_a, rp):
    response = client.get(authorize_path(oidc_a, rp, scope="openid", nonce="n" * 256))
    assert redirect_error(response) == "invalid_request"


# --- The switch: discovery, JWKS, registration, setproject ---------------------------------------------


def metadata(client, project, path=".well-known/openid-configuration") -> dict:
    response = client.get(f"/p/{project.slug}/{path}")
    assert response.status_code == 200
    return response.json()


def test_discovery_without_openid_connect_advertises_none_of_it(client, project_a):
    for path in (".well-known/openid-configuration", ".well-known/oauth-authorization-server"):
        doc = metadata(client, project_a, path)
        assert not OIDC_FIELDS & set(doc)
        assert "openid" not in doc["scopes_supported"]


def test_discovery_with_openid_connect_is_truthful(client, oidc_a):
    doc = metadata(client, oidc_a)

    assert doc["userinfo_endpoint"] == "http://127.0.0.1:8000/p/alpha/oauth/userinfo"
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "email"} <= \
        set(doc["claims_supported"])
    assert "email_verified" in doc["claims_supported"]
    assert {"openid", "profile", "email"} <= set(doc["scopes_supported"])
    assert doc["prompt_values_supported"] == ["none", "login", "consent"]
    assert doc["response_types_supported"] == ["code"]
    assert metadata(client, oidc_a, ".well-known/oauth-authorization-server") == doc


def test_jwks_carries_an_rs256_key_only_while_openid_connect_is_on(client, project_a):
    def algs():
        return sorted(k["alg"] for k in client.get("/p/alpha/.well-known/jwks.json").json()["keys"])

    assert algs() == ["ES256"]
    turn_on_openid(project_a)
    assert algs() == ["ES256", "RS256"]
    rsa = SigningKey.current(project_a, "RS256")
    assert rsa.public_jwk["kty"] == "RSA" and "d" not in rsa.public_jwk
    assert "BEGIN" not in rsa.private_key_encrypted  # encrypted at rest like the ES256 key


def test_rotation_renews_the_key_of_every_algorithm_in_use(client, oidc_a):
    before = {alg: SigningKey.current(oidc_a, alg).kid for alg in ("ES256", "RS256")}
    oidc_a.rotate_signing_key()
    after = {alg: SigningKey.current(oidc_a, alg).kid for alg in ("ES256", "RS256")}
    published = {k["kid"] for k in client.get("/p/alpha/.well-known/jwks.json").json()["keys"]}

    assert before["ES256"] != after["ES256"] and before["RS256"] != after["RS256"]
    assert set(before.values()) | set(after.values()) == published  # old ones until their tokens expire


def test_setproject_turns_openid_connect_on(project_a):
    out = StringIO()
    call_command("setproject", "alpha", "--set", "openid=true", "--json", stdout=out)

    assert json.loads(out.getvalue())["openid"] is True
    project = Project.objects.get(slug="alpha")
    assert project.openid and SigningKey.current(project, "RS256")


def test_the_management_api_turns_openid_connect_on(client, project_a, alice):
    from dashboard.models import OperatorToken

    token = OperatorToken.issue(alice, "script")[1]
    response = client.patch("/api/v1/projects/alpha", {"openid": True}, content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200 and response.json()["openid"] is True
    assert Project.objects.get(slug="alpha").openid
    assert SigningKey.objects.filter(project=project_a, alg="RS256", retired_at__isnull=True).count() == 1


def test_the_dashboard_turns_openid_connect_on(client, project_a, alice):
    client.force_login(alice)
    page = client.get("/projects/alpha/settings").content.decode()
    assert "OpenID Connect (ID tokens, userinfo)" in page
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "resources_text": "https://mcp.alpha.example/mcp", "open_registration_enabled": "on", "openid": "on"}

    assert client.post("/projects/alpha/settings", data).status_code == 302
    assert Project.objects.get(slug="alpha").openid


def register(client, **fields):
    body = {"client_name": "RP", "redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "none",
            **fields}
    return client.post("/p/alpha/api/oauth/register", json.dumps(body), content_type="application/json")


def test_registration_keeps_an_id_token_alg_we_sign_with(client, oidc_a):
    response = register(client, id_token_signed_response_alg="ES256", scope="openid email")

    assert response.status_code == 201
    assert response.json()["id_token_signed_response_alg"] == "ES256"
    assert response.json()["scope"] == "openid email"


def test_registration_drops_an_id_token_alg_we_do_not_sign_with(client, oidc_a):
    response = register(client, id_token_signed_response_alg="HS256")

    assert response.status_code == 201
    assert "id_token_signed_response_alg" not in response.json()
    client_row = Application.objects.get(client_id=response.json()["client_id"])
    assert client_row.narrowed["id_token_signed_response_alg"][0]["value"] == "HS256"
