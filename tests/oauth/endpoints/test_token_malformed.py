"""Malformed input at the token endpoints never yields a 500 (API.md "Errors")."""

import pytest

from tests.token_support import basic, make_code, post_form, token_url

NUL = "bad\x00value"


@pytest.mark.parametrize("field", ["client_id", "code", "code_verifier", "redirect_uri", "resource"])
def test_it_refuses_nul_bytes_in_a_code_redemption_without_a_500(client, public_client_a, end_user_a, project_a, field):
    code, verifier = make_code(public_client_a, end_user_a)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": public_client_a.client_id, "redirect_uri": "http://127.0.0.1/callback", field: NUL}

    response = post_form(client, token_url(project_a), data)

    assert 400 <= response.status_code < 500
    assert response.json()["error"] in {"invalid_request", "invalid_client", "invalid_grant", "invalid_target",
                                        "invalid_scope"}


@pytest.mark.parametrize("data", [
    {"grant_type": "refresh_token", "refresh_token": NUL},
    {"grant_type": "refresh_token"},
    {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": NUL,
     "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"},
    {"grant_type": "client_credentials", "scope": NUL},
    {"grant_type": NUL},
])
def test_it_refuses_malformed_grants_without_a_500(client, confidential_client_a, project_a, data):
    response = post_form(client, token_url(project_a), data, HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert 400 <= response.status_code < 500
    assert "error" in response.json()


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "YQ==", "Bearer", "Basic", "Basic " + "AAAA" * 500])
def test_it_refuses_broken_client_authentication_without_a_500(client, project_a, header):
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("path", ["oauth/revoke", "oauth/introspect"])
def test_revoke_and_introspect_refuse_nul_bytes_without_a_500(client, confidential_client_a, project_a, path):
    response = post_form(client, f"/p/{project_a.slug}/{path}", {"token": NUL, "client_id": NUL})

    assert response.status_code in (200, 400, 401)
    body = response.content and response.json()
    assert body in ("", b"", {"active": False}) or "error" in body


@pytest.mark.parametrize("field", ["client_id", "subject", "resource"])
def test_the_mcpauth_exchange_refuses_nul_bytes_without_a_500(client, public_client_a, project_a, field):
    import json

    body = {"client_id": public_client_a.client_id, "subject": "u", field: NUL}

    response = client.post(f"/p/{project_a.slug}/api/oauth/token/exchange", json.dumps(body),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# Names the validator's hooks set on oauthlib's request. oauthlib answers a name it lacks from the
# request's parameters, so a form field of the same name must not stand in for one of them.
INTERNAL_ATTRIBUTES = ["refresh_token_instance", "grant_instance", "device_grant_instance", "expires_in_cap",
                       "token_claims", "token_family", "audience", "refresh_token_jkt", "code_row", "django_request"]


@pytest.mark.parametrize("field", INTERNAL_ATTRIBUTES)
def test_a_form_field_named_like_an_internal_attribute_is_ignored(client, confidential_client_a, project_a, field):
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials", field: "x"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("field", INTERNAL_ATTRIBUTES)
def test_a_code_redemption_ignores_a_form_field_named_like_an_internal_attribute(
        client, public_client_a, end_user_a, project_a, field):
    code, verifier = make_code(public_client_a, end_user_a)
    response = post_form(client, token_url(project_a), {
        "grant_type": "authorization_code", "client_id": public_client_a.client_id, "code": code,
        "code_verifier": verifier, "redirect_uri": public_client_a.redirect_uris.split()[0], field: "x"})

    assert response.status_code == 200
    assert response.json()["refresh_token"]
