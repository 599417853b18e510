"""RFC 8414 metadata at every location of API.md, with the exact issuer string."""

import pytest

ORIGIN = "http://127.0.0.1:8000"
ISSUER = f"{ORIGIN}/p/alpha"

LOCATIONS = [
    "/p/alpha/.well-known/oauth-authorization-server",
    "/p/alpha/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server/p/alpha",
    "/.well-known/openid-configuration/p/alpha",
]


@pytest.mark.parametrize("location", LOCATIONS)
def test_it_serves_metadata_with_the_exact_issuer(client, project_a, location):
    response = client.get(location)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["issuer"] == ISSUER


def test_it_lists_every_field_api_md_requires(client, project_a):
    doc = client.get(LOCATIONS[0]).json()
    assert doc["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["registration_endpoint"] == f"{ISSUER}/api/oauth/register"
    assert doc["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["scopes_supported"] == ["mcp:tools", "mcp:resources", "mcp:prompts", "offline_access"]
    assert doc["response_types_supported"] == ["code"]
    assert set(doc["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:device_code",
    }
    assert doc["device_authorization_endpoint"] == f"{ISSUER}/oauth/device_authorization"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_basic", "client_secret_post",
                                                                 "private_key_jwt"}
    assert doc["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "PS256", "ES256", "EdDSA"]
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True


def test_it_gives_each_project_its_own_endpoints(client, project_a, project_b):
    doc = client.get("/.well-known/oauth-authorization-server/p/bravo").json()
    assert doc["issuer"] == f"{ORIGIN}/p/bravo"
    assert doc["token_endpoint"] == f"{ORIGIN}/p/bravo/oauth/token"


@pytest.mark.parametrize("path", [
    "/p/nope/.well-known/oauth-authorization-server",
    "/p/nope/.well-known/openid-configuration",
    "/p/nope/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server/p/nope",
    "/.well-known/openid-configuration/p/nope",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/nope",
    "/.well-known/oauth-authorization-server/p/alpha/extra",
    "/p/alpha/.well-known/oauth-protected-resource",
    "/p/alpha/unused",
])
def test_it_answers_unknown_slugs_and_unused_paths_with_a_plain_404(client, project_a, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "error_description": "Not found."}


@pytest.mark.parametrize("path", [
    "/p/alpha/.well-known/oauth-authorization-server/",
    "/.well-known/oauth-authorization-server/p/alpha/",
    "/p/alpha/.well-known/jwks.json/",
    "/p/alpha",
])
def test_it_never_redirects_for_a_trailing_slash(client, project_a, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Location" not in response


def test_it_allows_any_origin(client, project_a):
    response = client.get(LOCATIONS[0], HTTP_ORIGIN="https://inspector.example")
    assert response["Access-Control-Allow-Origin"] == "*"


def test_it_answers_cors_preflight_with_the_mcp_headers(client, project_a):
    response = client.options(LOCATIONS[0], HTTP_ORIGIN="https://inspector.example",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version"} <= allowed


def test_it_refuses_other_methods_with_json(client, project_a):
    response = client.post(LOCATIONS[0])
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


def test_it_omits_the_registration_endpoint_when_registration_is_off(client, project_a):
    project_a.open_registration_enabled = False
    project_a.secret_registration_enabled = False
    project_a.save()
    doc = client.get(LOCATIONS[0]).json()
    assert "registration_endpoint" not in doc


def test_it_keeps_the_registration_endpoint_while_secret_registration_is_on(client, project_a):
    project_a.open_registration_enabled = False
    project_a.save()
    assert "registration_endpoint" in client.get(LOCATIONS[0]).json()


def test_it_reflects_a_settings_change_at_once(client, project_a):
    assert client.get(LOCATIONS[0]).json()["client_id_metadata_document_supported"] is True
    project_a.cimd_enabled = False
    project_a.save()
    assert client.get(LOCATIONS[0]).json()["client_id_metadata_document_supported"] is False


def test_it_uses_the_scopes_catalog(client, alice):
    from projects.models import Project

    Project.objects.create_project(owner=alice, name="Custom", slug="custom", scopes=["files:read", "files:write"])
    doc = client.get("/p/custom/.well-known/oauth-authorization-server").json()
    assert doc["scopes_supported"] == ["files:read", "files:write"]


class TestCustomDomain:
    def test_it_serves_the_project_at_the_domain_root_with_an_https_issuer(self, client, project_a):
        project_a.custom_domain = "auth.alpha.example"
        project_a.save()
        response = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="auth.alpha.example")
        assert response.status_code == 200
        doc = response.json()
        assert doc["issuer"] == "https://auth.alpha.example"
        assert doc["token_endpoint"] == "https://auth.alpha.example/oauth/token"

    def test_the_path_form_still_works(self, client, project_a):
        project_a.custom_domain = "auth.alpha.example"
        project_a.save()
        assert client.get(LOCATIONS[0]).json()["issuer"] == ISSUER

    def test_an_unknown_domain_resolves_to_no_project(self, client, project_a):
        response = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="other.example")
        assert response.status_code == 404

    def test_a_changed_domain_stops_resolving(self, client, project_a):
        project_a.custom_domain = "auth.alpha.example"
        project_a.save()
        client.get("/.well-known/oauth-authorization-server", HTTP_HOST="auth.alpha.example")
        project_a.custom_domain = "login.alpha.example"
        project_a.save()
        old = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="auth.alpha.example")
        new = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="login.alpha.example")
        assert old.status_code == 404
        assert new.json()["issuer"] == "https://login.alpha.example"
