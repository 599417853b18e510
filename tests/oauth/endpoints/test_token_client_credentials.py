"""Token endpoint, client_credentials grant (RFC 6749 §4.4): secret- or dashboard-registered confidential clients."""

import pytest

from oauth.models import AccessToken, Application, RefreshToken
from tests.token_support import basic, introspect, post_form, token_url


def test_it_issues_an_access_token_without_refresh_token(client, confidential_client_a, project_a):
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials", "scope": "mcp:tools"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["access_token"].startswith("mcpat_") and "refresh_token" not in body
    assert body["scope"] == "mcp:tools" and body["token_type"] == "Bearer"
    assert body["expires_in"] == project_a.access_token_ttl
    row = AccessToken.objects.get()
    assert row.user is None and row.resource == ["https://mcp.alpha.example/mcp"] and row.token == ""
    assert not RefreshToken.objects.exists()
    answer = introspect(client, project_a, body["access_token"], project_a.registration_secret).json()
    assert answer["sub"] == confidential_client_a.client_id
    assert answer["client_id"] == confidential_client_a.client_id


def test_it_defaults_to_the_clients_scopes(client, confidential_client_a, project_a):
    confidential_client_a.metadata["scope"] = "mcp:tools mcp:resources"
    confidential_client_a.save()

    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert response.json()["scope"] == "mcp:tools mcp:resources"


def test_it_refuses_a_scope_outside_the_catalog(client, confidential_client_a, project_a):
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials", "scope": "admin"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_it_refuses_a_resource_the_project_does_not_serve(client, confidential_client_a, project_a):
    response = post_form(client, token_url(project_a),
                         {"grant_type": "client_credentials", "resource": "https://elsewhere.example/mcp"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_it_refuses_public_clients(client, public_client_a, project_a):
    response = post_form(client, token_url(project_a),
                         {"grant_type": "client_credentials", "client_id": public_client_a.client_id})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("path", [Application.Path.OPEN, Application.Path.CIMD])
def test_it_refuses_confidential_clients_not_registered_with_a_secret(client, confidential_client_a, project_a, path):
    Application.objects.filter(pk=confidential_client_a.pk).update(registration_path=path)

    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert not AccessToken.objects.exists()


def test_it_refuses_a_client_that_did_not_register_the_grant(client, confidential_client_a, project_a):
    confidential_client_a.metadata["grant_types"] = ["authorization_code", "refresh_token"]
    confidential_client_a.save()

    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_it_refuses_a_client_of_another_project(client, confidential_client_a, project_b):
    response = post_form(client, token_url(project_b), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
