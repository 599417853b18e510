"""Issue 6: the management REST API with operator API tokens, and its OpenAPI schema and docs."""

import pytest

from dashboard.models import OperatorToken
from oauth.models import AccessToken, Application
from projects.models import AuditEvent, Project, ProjectMember, ProjectSecret, SigningKey


@pytest.fixture
def alice_token(alice):
    return OperatorToken.issue(alice, "ci")[1]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_it_issues_api_tokens_shown_once_and_stored_hashed(client, alice):
    client.force_login(alice)
    response = client.post("/account", {"action": "token", "name": "deploy script"})
    assert response.status_code == 200
    value = "mcpop_" + response.content.decode().split('value="mcpop_', 1)[1].split('"', 1)[0]
    row = OperatorToken.objects.get(user=alice)
    assert value not in (row.prefix, row.digest) and OperatorToken.authenticate(value) == row
    assert value not in client.get("/account").content.decode()


def test_it_refuses_a_missing_unknown_or_revoked_token(client, alice, alice_token):
    assert client.get("/api/v1/projects").status_code == 401
    response = client.get("/api/v1/projects", **bearer("mcpop_" + "x" * 43))
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")
    OperatorToken.objects.get(user=alice).revoke()
    assert client.get("/api/v1/projects", **bearer(alice_token)).status_code == 401


def test_it_lists_only_my_projects(client, project_a, project_b, alice_token):
    response = client.get("/api/v1/projects", **bearer(alice_token))
    assert response.status_code == 200
    assert [p["slug"] for p in response.json()] == ["alpha"]
    assert response.json()[0]["issuer"] == "http://127.0.0.1:8000/p/alpha"


def test_it_answers_404_for_another_operators_project(client, project_a, project_b, public_client_b, alice_token):
    for path in ("", "/clients", "/secrets", "/audit-events", f"/clients/{public_client_b.pk}"):
        response = client.get(f"/api/v1/projects/bravo{path}", **bearer(alice_token))
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    response = client.delete(f"/api/v1/projects/bravo/clients/{public_client_b.pk}", **bearer(alice_token))
    assert response.status_code == 404
    assert Application.objects.filter(pk=public_client_b.pk).exists()


def test_it_creates_a_project_with_its_registration_secret(client, alice, alice_token):
    response = client.post("/api/v1/projects", {"name": "Gamma", "slug": "gamma",
                                                 "resource": "https://mcp.gamma.example/mcp"},
                           content_type="application/json", **bearer(alice_token))
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    project = Project.objects.get(slug="gamma")
    assert body["resources"] == ["https://mcp.gamma.example/mcp"] and project.role_of(alice) == "owner"
    assert ProjectSecret.authenticate(project, body["registration_secret"], "register") is not None


def test_it_refuses_an_invalid_project(client, project_a, alice_token):
    response = client.post("/api/v1/projects", {"name": "X", "slug": "alpha"}, content_type="application/json",
                           **bearer(alice_token))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and "slug" in response.json()["fields"]


def test_it_patches_settings_audited_and_visible_in_discovery(client, project_a, alice_token):
    response = client.patch("/api/v1/projects/alpha", {"open_registration_enabled": False,
                                                       "secret_registration_enabled": False,
                                                       "scopes": [{"name": "files:read", "description": "Read"}]},
                            content_type="application/json", **bearer(alice_token))
    assert response.status_code == 200
    project_a.refresh_from_db()
    assert not project_a.registration_enabled and project_a.scope_names == ["files:read"]
    event = AuditEvent.objects.get(project=project_a, kind="settings.changed")
    assert set(event.detail["changed"]) == {"open_registration_enabled", "secret_registration_enabled", "scopes"}
    metadata = client.get("/p/alpha/.well-known/oauth-authorization-server").json()
    assert "registration_endpoint" not in metadata and metadata["scopes_supported"] == ["files:read"]


def test_it_refuses_invalid_settings(client, project_a, alice_token):
    response = client.patch("/api/v1/projects/alpha", {"access_token_ttl": 1, "resources": ["ftp://x"]},
                            content_type="application/json", **bearer(alice_token))
    assert response.status_code == 400
    assert {"access_token_ttl", "resources_text"} <= set(response.json()["fields"])
    project_a.refresh_from_db()
    assert project_a.access_token_ttl == 3600


def test_a_viewer_reads_but_cannot_change(client, project_a, bob, public_client_a):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    token = OperatorToken.issue(bob, "ro")[1]
    assert client.get("/api/v1/projects/alpha/clients", **bearer(token)).status_code == 200
    for method, path, body in [
        ("patch", "", {"token_format": "jwt"}),
        ("post", "/secrets", {"name": "x", "permissions": ["introspect"]}),
        ("post", "/clients", {"name": "x", "grant_types": ["authorization_code"], "redirect_uris": ["https://x/cb"]}),
        ("delete", f"/clients/{public_client_a.pk}", None),
        ("post", f"/clients/{public_client_a.pk}/disable", None),
        ("post", "/rotate-key", None),
    ]:
        response = getattr(client, method)(f"/api/v1/projects/alpha{path}", body, content_type="application/json",
                                           **bearer(token))
        assert response.status_code == 403 and response.json()["error"] == "forbidden", path
    project_a.refresh_from_db()
    assert project_a.token_format == "opaque" and project_a.secrets.count() == 1
    assert Application.objects.get(pk=public_client_a.pk).disabled_at is None


def test_it_manages_clients(client, project_a, public_client_a, end_user_a, alice_token):
    response = client.post("/api/v1/projects/alpha/clients", {
        "name": "Backend", "client_type": "confidential", "grant_types": ["client_credentials"]},
        content_type="application/json", **bearer(alice_token))
    assert response.status_code == 201
    created = Application.objects.get(project=project_a, name="Backend")
    assert response.json()["client_secret"].startswith("mcpcs_")
    assert created.client_secret != response.json()["client_secret"]
    AccessToken.objects.create(user=end_user_a, application=public_client_a, token="mcpat_api_test",
                               expires="2999-01-01T00:00:00Z", scope="mcp:tools")
    listed = client.get("/api/v1/projects/alpha/clients", {"path": "dashboard"}, **bearer(alice_token)).json()
    assert [c["name"] for c in listed] == ["Backend"]
    path = f"/api/v1/projects/alpha/clients/{public_client_a.pk}"
    assert client.get(path, **bearer(alice_token)).json()["live_tokens"] == 1
    assert client.post(path + "/revoke-tokens", **bearer(alice_token)).status_code == 200
    assert not AccessToken.objects.filter(application=public_client_a).exists()
    assert client.post(path + "/disable", **bearer(alice_token)).json() == {"ok": True}
    assert Application.objects.get(pk=public_client_a.pk).disabled_at is not None
    assert client.delete(path, **bearer(alice_token)).status_code == 204
    assert not Application.objects.filter(pk=public_client_a.pk).exists()


def test_it_manages_secrets(client, project_a, alice_token):
    response = client.post("/api/v1/projects/alpha/secrets", {"name": "introspector", "permissions": ["introspect"]},
                           content_type="application/json", **bearer(alice_token))
    assert response.status_code == 201
    value, pk = response.json()["secret"], response.json()["id"]
    assert ProjectSecret.authenticate(project_a, value, "introspect") is not None
    listed = client.get("/api/v1/projects/alpha/secrets", **bearer(alice_token)).json()
    assert all("secret" not in s and "digest" not in s for s in listed) and len(listed) == 2
    assert client.delete(f"/api/v1/projects/alpha/secrets/{pk}", **bearer(alice_token)).status_code == 204
    assert ProjectSecret.authenticate(project_a, value, "introspect") is None


def test_it_rotates_the_key_and_lists_audit_events(client, project_a, alice_token):
    old = SigningKey.current(project_a).kid
    response = client.post("/api/v1/projects/alpha/rotate-key", **bearer(alice_token))
    assert response.status_code == 200 and response.json()["kid"] != old
    events = client.get("/api/v1/projects/alpha/audit-events", {"kind": "key.rotated"}, **bearer(alice_token)).json()
    assert events["count"] == 1 and events["results"][0]["actor"] == "alice@example.com"


def test_the_schema_covers_the_management_api_and_the_oauth_endpoints(client, db):
    response = client.get("/api/schema", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/projects/{slug}/clients" in paths
    for oauth_path in ("/p/{slug}/oauth/token", "/p/{slug}/oauth/authorize", "/p/{slug}/api/oauth/register",
                       "/p/{slug}/.well-known/oauth-authorization-server", "/p/{slug}/oauth/introspect"):
        assert oauth_path in paths, oauth_path


def test_the_docs_page_loads_its_assets_from_this_origin(client, db):
    response = client.get("/docs/endpoints")
    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/dashboard/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "<script>" not in html and "script-src 'self'" in response["Content-Security-Policy"]
    script = client.get("/docs/endpoints", {"script": ""})
    assert script.status_code == 200 and "/api/schema" in script.content.decode()


def test_it_lists_end_users_and_revokes_a_persons_grants(client, project_a, public_client_a, end_user_a,
                                                         end_user_b, alice_token):
    AccessToken.objects.create(user=end_user_a, application=public_client_a, token="mcpat_api_person",
                               expires="2999-01-01T00:00:00Z", scope="mcp:tools")
    people = client.get("/api/v1/projects/alpha/end-users", **bearer(alice_token)).json()
    assert [(p["subject"], p["live_tokens"]) for p in people] == [(end_user_a.subject, 1)]
    response = client.post(f"/api/v1/projects/alpha/end-users/{end_user_a.pk}/revoke", **bearer(alice_token))
    assert response.status_code == 200 and response.json() == {"live_tokens": 1}
    assert not AccessToken.objects.filter(user=end_user_a).exists()
    assert client.post(f"/api/v1/projects/alpha/end-users/{end_user_b.pk}/revoke",
                       **bearer(alice_token)).status_code == 404


def test_owners_manage_members_and_the_last_owner_stays(client, project_a, alice, bob, alice_token):
    response = client.post("/api/v1/projects/alpha/members", {"email": "bob@example.com", "role": "admin"},
                           content_type="application/json", **bearer(alice_token))
    assert response.status_code == 201 and project_a.role_of(bob) == "admin"
    bob_token = OperatorToken.issue(bob, "bob")[1]
    response = client.post("/api/v1/projects/alpha/members", {"email": "bob@example.com", "role": "owner"},
                           content_type="application/json", **bearer(bob_token))
    assert response.status_code == 403 and project_a.role_of(bob) == "admin"
    own = project_a.memberships.get(user=alice)
    response = client.patch(f"/api/v1/projects/alpha/members/{own.pk}", {"role": "viewer"},
                            content_type="application/json", **bearer(alice_token))
    assert response.status_code == 400 and project_a.role_of(alice) == "owner"
    bob_member = project_a.memberships.get(user=bob)
    assert client.delete(f"/api/v1/projects/alpha/members/{bob_member.pk}", **bearer(alice_token)).status_code == 204
    assert project_a.role_of(bob) is None
