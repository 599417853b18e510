"""RFC 9068 JWT access tokens (per project), ES256 with the project's current key; key rotation."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from jwcrypto import jwk, jws, jwt

from oauth.models import AccessToken
from oauth.tokens import jwt_tokens
from projects.models import Project, SigningKey
from projects.tasks import rotate_due_signing_keys
from tests.token_support import basic, introspect, make_code, post_form, redeem


@pytest.fixture
def jwt_project(project_a):
    project_a.token_format = Project.TokenFormat.JWT
    project_a.save()
    return project_a


def issue(http, client, user):
    code, verifier = make_code(client, user)
    response = redeem(http, client, code, verifier)
    assert response.status_code == 200
    return response.json()


def published_keys(http, project) -> jwk.JWKSet:
    return jwk.JWKSet.from_json(http.get(f"/p/{project.slug}/.well-known/jwks.json").content)


def test_it_issues_a_signed_rfc9068_access_token(client, jwt_project, public_client_a, end_user_a):
    body = issue(client, public_client_a, end_user_a)
    token = body["access_token"]

    header = jws.JWS()
    header.deserialize(token)
    assert header.jose_header == {"alg": "ES256", "typ": "at+jwt", "kid": SigningKey.current(jwt_project).kid}
    verified = jwt.JWT(jwt=token, key=published_keys(client, jwt_project), algs=["ES256"])
    claims = json.loads(verified.claims)
    assert set(claims) == {"iss", "aud", "sub", "client_id", "scope", "exp", "iat", "jti"}
    assert claims["iss"] == "http://127.0.0.1:8000/p/alpha"
    assert claims["aud"] == "https://mcp.alpha.example/mcp"
    assert claims["sub"] == end_user_a.subject
    assert claims["client_id"] == public_client_a.client_id
    assert claims["scope"] == "mcp:tools offline_access"
    assert claims["exp"] - claims["iat"] == jwt_project.access_token_ttl == body["expires_in"]
    assert body["refresh_token"].startswith("mcprt_")


def test_it_stores_only_the_checksum_of_a_jwt(client, jwt_project, public_client_a, end_user_a):
    token = issue(client, public_client_a, end_user_a)["access_token"]

    row = AccessToken.objects.get()
    assert row.token == ""
    assert token not in str(AccessToken.objects.values().get())


def test_a_client_credentials_jwt_names_the_client_as_subject(client, jwt_project, confidential_client_a):
    response = post_form(client, f"/p/{jwt_project.slug}/oauth/token", {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    claims = jwt_tokens.verify(jwt_project, response.json()["access_token"])
    assert claims["sub"] == confidential_client_a.client_id == claims["client_id"]


def test_a_revoked_jwt_stops_introspecting_active(client, jwt_project, public_client_a, end_user_a):
    token = issue(client, public_client_a, end_user_a)["access_token"]
    secret = jwt_project.registration_secret
    assert introspect(client, jwt_project, token, secret).json()["active"] is True

    revoked = post_form(client, f"/p/{jwt_project.slug}/oauth/revoke",
                        {"token": token, "client_id": public_client_a.client_id})

    assert revoked.status_code == 200
    assert introspect(client, jwt_project, token, secret).json() == {"active": False}


def test_rotatekeys_keeps_the_previous_key_published(client, jwt_project, public_client_a, end_user_a):
    old_kid = SigningKey.current(jwt_project).kid
    old_token = issue(client, public_client_a, end_user_a)["access_token"]

    call_command("rotatekeys", "--project", jwt_project.slug)

    jwt_project.refresh_from_db()
    new_kid = SigningKey.current(jwt_project).kid
    assert new_kid != old_kid
    kids = {k["kid"] for k in json.loads(client.get(f"/p/{jwt_project.slug}/.well-known/jwks.json").content)["keys"]}
    assert kids == {old_kid, new_kid}
    assert jwt_tokens.verify(jwt_project, old_token) is not None
    new_token = issue(client, public_client_a, end_user_a)["access_token"]
    header = jws.JWS()
    header.deserialize(new_token)
    assert header.jose_header["kid"] == new_kid


def test_the_beat_task_rotates_keys_on_the_projects_schedule(project_a, project_b):
    project_a.key_rotation_days = 30
    project_a.save()
    project_b.key_rotation_days = 0  # by hand only
    project_b.save()
    SigningKey.objects.update(created_at=timezone.now() - timedelta(days=31))
    old_a, old_b = SigningKey.current(project_a).kid, SigningKey.current(project_b).kid

    rotated = rotate_due_signing_keys()

    assert list(rotated) == ["alpha"]
    assert SigningKey.current(project_a).kid == rotated["alpha"] != old_a
    assert SigningKey.current(project_b).kid == old_b
    assert SigningKey.objects.get(kid=old_a).retired_at is not None
    assert rotate_due_signing_keys() == {}
