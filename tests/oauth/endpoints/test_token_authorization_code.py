"""Token endpoint, authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707 §2.2)."""

import hashlib

import pytest
from django.utils import timezone

from oauth.models import AccessToken, Application, Grant, RefreshToken
from projects.models import AuditEvent
from tests.token_support import basic, introspect, make_code, post_form, redeem, token_url


def test_it_issues_prefixed_bearer_tokens_with_no_store(client, public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a)

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == project_a.access_token_ttl
    assert body["scope"] == "mcp:tools offline_access"
    assert body["access_token"].startswith("mcpat_") and len(body["access_token"]) == 6 + 43
    assert body["refresh_token"].startswith("mcprt_") and len(body["refresh_token"]) == 6 + 43


def test_it_stores_no_usable_token(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    body = redeem(client, public_client_a, code, verifier).json()

    access = AccessToken.objects.get(application=public_client_a)
    refresh = RefreshToken.objects.get(application=public_client_a)
    assert access.token == "" and refresh.token == ""
    assert access.token_checksum == hashlib.sha256(body["access_token"].encode()).hexdigest()
    assert refresh.token_checksum == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    rows = [*AccessToken.objects.values(), *RefreshToken.objects.values()]
    assert not any(body["access_token"] in str(r) or body["refresh_token"] in str(r) for r in rows)


def test_it_takes_lifetimes_from_the_project(client, public_client_a, end_user_a, project_a):
    project_a.access_token_ttl = 120
    project_a.save()
    code, verifier = make_code(public_client_a, end_user_a)

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 200
    assert response.json()["expires_in"] == 120


def test_it_authenticates_confidential_clients_with_basic(client, confidential_client_a, end_user_a):
    code, verifier = make_code(confidential_client_a, end_user_a)

    response = redeem(client, confidential_client_a, code, verifier)

    assert response.status_code == 200
    assert AccessToken.objects.filter(application=confidential_client_a, user=end_user_a).count() == 1


def test_it_authenticates_confidential_clients_with_post(client, confidential_client_a, end_user_a):
    code, verifier = make_code(confidential_client_a, end_user_a)

    response = redeem(client, confidential_client_a, code, verifier, secret=False,
                      client_secret=confidential_client_a.plain_secret)

    assert response.status_code == 200


def test_it_refuses_a_confidential_client_without_its_secret(client, confidential_client_a, end_user_a):
    code, verifier = make_code(confidential_client_a, end_user_a)

    response = redeem(client, confidential_client_a, code, verifier, secret=False)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_it_refuses_a_wrong_client_secret(client, confidential_client_a, end_user_a, project_a):
    code, verifier = make_code(confidential_client_a, end_user_a)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "https://backend.example/callback"}

    response = post_form(client, token_url(project_a), data,
                         HTTP_AUTHORIZATION=basic(confidential_client_a, "mcpcs_wrong"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_basic_and_body_naming_different_clients(client, confidential_client_a, public_client_a,
                                                             end_user_a, project_a):
    code, verifier = make_code(confidential_client_a, end_user_a)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": public_client_a.client_id}

    response = post_form(client, token_url(project_a), data, HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("how", ["unknown", "deleted", "disabled"])
def test_it_answers_invalid_client_for_unknown_deleted_or_disabled_clients(client, public_client_a, end_user_a, how):
    code, verifier = make_code(public_client_a, end_user_a)
    if how == "unknown":
        public_client_a.client_id = "no-such-client"
    elif how == "deleted":
        Application.objects.filter(pk=public_client_a.pk).delete()
    else:
        Application.objects.filter(pk=public_client_a.pk).update(disabled_at=timezone.now())

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


def test_it_refuses_a_client_of_another_project(client, public_client_a, end_user_a, project_b):
    code, verifier = make_code(public_client_a, end_user_a)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": public_client_a.client_id, "redirect_uri": "http://127.0.0.1/callback"}

    response = post_form(client, token_url(project_b), data)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert Grant.objects.get(code=code).redeemed_at is None


def test_it_refuses_a_wrong_code_verifier(client, public_client_a, end_user_a):
    code, _ = make_code(public_client_a, end_user_a)

    response = redeem(client, public_client_a, code, "x" * 50)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_it_requires_a_code_verifier(client, public_client_a, end_user_a, project_a):
    code, _ = make_code(public_client_a, end_user_a)
    data = {"grant_type": "authorization_code", "code": code, "client_id": public_client_a.client_id,
            "redirect_uri": "http://127.0.0.1/callback"}

    response = post_form(client, token_url(project_a), data)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_it_refuses_a_plain_pkce_code(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    Grant.objects.filter(code=code).update(code_challenge=verifier, code_challenge_method="plain")

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_refuses_an_expired_code(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a, expires_in=-1)

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_refuses_an_unknown_code(client, public_client_a, end_user_a):
    response = redeem(client, public_client_a, "no-such-code", "x" * 50)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_refuses_a_code_of_another_client(client, public_client_a, confidential_client_a, end_user_a):
    code, verifier = make_code(confidential_client_a, end_user_a)

    response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_refuses_a_different_redirect_uri(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)

    response = redeem(client, public_client_a, code, verifier, redirect_uri="https://client.example/callback")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"  # RFC 6749 §5.2


def test_it_accepts_an_omitted_redirect_uri(client, public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a, redirect_uri="https://client.example/callback")
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": public_client_a.client_id}

    response = post_form(client, token_url(project_a), data)

    assert response.status_code == 200


def test_it_redeems_a_code_once_and_a_replay_revokes_what_it_issued(client, public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a)
    first = redeem(client, public_client_a, code, verifier).json()

    replay = redeem(client, public_client_a, code, verifier)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert RefreshToken.objects.get().revoked is not None
    assert introspect(client, project_a, first["access_token"], project_a.registration_secret).json() == {"active": False}
    assert AuditEvent.objects.filter(project=project_a, kind="token.code_replayed").count() == 1


def test_it_binds_the_granted_resource_as_audience(client, public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a, resource=["https://files.alpha.example/mcp"])
    body = redeem(client, public_client_a, code, verifier).json()

    answer = introspect(client, project_a, body["access_token"], project_a.registration_secret).json()

    assert answer["aud"] == "https://files.alpha.example/mcp"
    assert AccessToken.objects.get().resource == ["https://files.alpha.example/mcp"]
    assert RefreshToken.objects.get().resource == ["https://files.alpha.example/mcp"]


def test_it_defaults_the_audience_to_the_project_default_resource(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a, resource=[])

    assert redeem(client, public_client_a, code, verifier).status_code == 200

    assert AccessToken.objects.get().resource == ["https://mcp.alpha.example/mcp"]


def test_it_narrows_to_a_requested_resource_within_the_grant(client, public_client_a, end_user_a):
    granted = ["https://mcp.alpha.example/mcp", "https://files.alpha.example/mcp"]
    code, verifier = make_code(public_client_a, end_user_a, resource=granted)

    response = redeem(client, public_client_a, code, verifier, resource="https://files.alpha.example/mcp")

    assert response.status_code == 200
    assert AccessToken.objects.get().resource == ["https://files.alpha.example/mcp"]


@pytest.mark.parametrize("resource", ["https://files.alpha.example/mcp", "https://mcp.bravo.example/mcp", "not a uri"])
def test_it_refuses_a_resource_beyond_the_grant_or_the_project(client, public_client_a, end_user_a, resource):
    code, verifier = make_code(public_client_a, end_user_a, resource=["https://mcp.alpha.example/mcp"])

    response = redeem(client, public_client_a, code, verifier, resource=resource)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()
    assert Grant.objects.get(code=code).redeemed_at is None


@pytest.mark.parametrize("grant_type", ["password", "implicit", ""])
def test_it_refuses_unsupported_grant_types(client, public_client_a, project_a, grant_type):
    data = {"grant_type": grant_type, "client_id": public_client_a.client_id, "username": "x", "password": "y"}

    response = post_form(client, token_url(project_a), data)

    assert response.status_code == 400
    assert response.json()["error"] == ("invalid_request" if grant_type == "" else "unsupported_grant_type")


def test_it_answers_cors_preflight_and_refuses_get(client, project_a):
    preflight = client.options(token_url(project_a))
    get = client.get(token_url(project_a))

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert get.status_code == 405
    assert get.json()["error"] == "invalid_request"
