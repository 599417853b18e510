"""RFC 7591 registration at {issuer}/api/oauth/register: the per-project policy, the response,
the abuse controls and the grouping of repeats. Field-by-field validation: test_client_metadata.py."""

import importlib
import json

import pytest
from django.contrib.auth.hashers import check_password

from oauth.models import Application
from projects import secrets as tokens
from projects.models import AuditEvent, ProjectSecret

ISSUER_A = "http://127.0.0.1:8000/p/alpha"
URL_A = "/p/alpha/api/oauth/register"
URL_B = "/p/bravo/api/oauth/register"

CLAUDE_LIKE = {
    "client_name": "Claude",
    "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}


def post(client, url, body, secret=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers, **extra)


def test_it_registers_an_open_public_client(client, project_a):
    response = post(client, URL_A, CLAUDE_LIKE)
    assert response.status_code == 201
    body = response.json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.registration_path == "open"
    assert app.client_type == "public"
    assert app.first_party is False and app.skip_authorization is False
    assert app.name == "Claude"
    assert app.redirect_uris == "https://claude.ai/api/mcp/auth_callback"
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["redirect_uris"] == CLAUDE_LIKE["redirect_uris"]
    assert body["client_name"] == "Claude"
    assert isinstance(body["client_id_issued_at"], int)
    assert body["registration_client_uri"] == f"{ISSUER_A}/api/oauth/register/{body['client_id']}"
    assert body["registration_access_token"].startswith("mcpreg_")
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_it_stores_the_registration_access_token_hashed(client, project_a):
    body = post(client, URL_A, CLAUDE_LIKE).json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert body["registration_access_token"] not in json.dumps(list(Application.objects.values()), default=str)
    assert app.registration_token_digest == tokens.digest(body["registration_access_token"])


def test_it_stores_the_registered_metadata_and_the_fingerprint(client, project_a):
    body = post(client, URL_A, {**CLAUDE_LIKE, "software_id": "claude-ai", "scope": "mcp:tools",
                                "contacts": ["ops@anthropic.example"]}).json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.metadata["software_id"] == "claude-ai"
    assert app.metadata["scope"] == "mcp:tools"
    assert app.metadata["contacts"] == ["ops@anthropic.example"]
    assert len(app.fingerprint) == 64
    assert body["scope"] == "mcp:tools"


def test_it_groups_repeated_identical_registrations_by_fingerprint(client, project_a):
    first = post(client, URL_A, {**CLAUDE_LIKE, "software_id": "claude-ai"}).json()
    second = post(client, URL_A, {**CLAUDE_LIKE, "software_id": "claude-ai",
                                  "redirect_uris": list(reversed(CLAUDE_LIKE["redirect_uris"]))}).json()
    other = post(client, URL_A, {**CLAUDE_LIKE, "software_id": "claude-ai", "client_name": "Other"}).json()
    apps = {a.client_id: a for a in Application.objects.filter(project=project_a)}
    assert first["client_id"] != second["client_id"]
    assert apps[first["client_id"]].fingerprint == apps[second["client_id"]].fingerprint
    assert apps[other["client_id"]].fingerprint != apps[first["client_id"]].fingerprint


def test_it_audits_the_registration(client, project_a):
    body = post(client, URL_A, CLAUDE_LIKE).json()
    event = AuditEvent.objects.get(project=project_a, kind="client.registered")
    assert event.client_id == body["client_id"]
    assert event.detail["path"] == "open"
    assert event.ip == "127.0.0.1"


def test_it_answers_cors_preflight(client, project_a):
    response = client.options(URL_A, HTTP_ORIGIN="https://claude.ai",
                              HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_it_refuses_get_on_the_registration_endpoint(client, project_a):
    response = client.get(URL_A)
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


def test_it_has_no_trailing_slash_route(client, project_a):
    response = post(client, URL_A + "/", CLAUDE_LIKE)
    assert response.status_code == 404
    assert Application.objects.filter(project=project_a).count() == 0


# -- open vs secret vs disabled policy ----------------------------------------------------------------

def test_it_registers_a_confidential_client_with_the_project_secret(client, project_a):
    response = post(client, URL_A, {
        "client_name": "Backend", "redirect_uris": ["https://backend.example/cb"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
    }, secret=project_a.registration_secret)
    assert response.status_code == 201
    body = response.json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.registration_path == "secret"
    assert app.client_type == "confidential"
    assert body["client_secret"].startswith("mcpcs_")
    assert body["client_secret_expires_at"] == 0
    assert app.client_secret.startswith("mcpauth_hmac$")  # hashed by the fast keyed hasher
    assert check_password(body["client_secret"], app.client_secret)
    assert app.allows_grant_type(Application.GRANT_CLIENT_CREDENTIALS)
    assert app.allows_grant_type(Application.GRANT_AUTHORIZATION_CODE)
    assert AuditEvent.objects.get(project=project_a, kind="client.registered").detail["path"] == "secret"


def test_it_defaults_secret_registration_to_client_secret_basic(client, project_a):
    body = post(client, URL_A, {"redirect_uris": ["https://backend.example/cb"]},
                secret=project_a.registration_secret).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "client_secret" in body


def test_it_registers_client_credentials_only_clients_with_a_secret(client, project_a):
    response = post(client, URL_A, {"client_name": "Cron", "grant_types": ["client_credentials"]},
                    secret=project_a.registration_secret)
    assert response.status_code == 201
    body = response.json()
    assert body["grant_types"] == ["client_credentials"]
    assert body["response_types"] == []
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.authorization_grant_type == Application.GRANT_CLIENT_CREDENTIALS
    assert not app.allows_grant_type(Application.GRANT_AUTHORIZATION_CODE)


def test_it_marks_a_secret_registered_client_first_party(client, project_a):
    body = post(client, URL_A, {**CLAUDE_LIKE, "first_party": True}, secret=project_a.registration_secret).json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.first_party is True and app.skip_authorization is True
    assert body["first_party"] is True


def test_it_refuses_first_party_on_open_registration(client, project_a):
    response = post(client, URL_A, {**CLAUDE_LIKE, "first_party": True})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert Application.objects.filter(project=project_a).count() == 0


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_it_narrows_a_confidential_client_on_open_registration_to_a_public_one(client, project_a, method):
    """RFC 7591 §3.2.1: open registration registers public clients; the response says so."""
    response = post(client, URL_A, {**CLAUDE_LIKE, "token_endpoint_auth_method": method})
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    app = Application.objects.get(project=project_a)
    assert app.client_type == Application.CLIENT_PUBLIC
    assert app.metadata["token_endpoint_auth_method"] == "none"
    assert app.narrowed == {"token_endpoint_auth_method": [
        {"value": method, "reason": "needs registration with a project secret (this way in registers public clients)"}]}


def test_it_narrows_client_credentials_away_on_open_registration(client, project_a):
    response = post(client, URL_A, {**CLAUDE_LIKE, "grant_types": ["authorization_code", "client_credentials"]})
    assert response.status_code == 201
    assert response.json()["grant_types"] == ["authorization_code"]
    app = Application.objects.get(project=project_a)
    assert app.grant_types == ["authorization_code"]
    assert not app.allows_grant_type(Application.GRANT_CLIENT_CREDENTIALS)
    assert app.narrowed == {"grant_types": [
        {"value": "client_credentials", "reason": "needs registration with a project secret"}]}


def test_it_refuses_open_registration_asking_only_for_a_secret_only_grant(client, project_a):
    body = {**CLAUDE_LIKE, "grant_types": ["client_credentials"], "response_types": []}
    response = post(client, URL_A, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert response.json()["error_description"].startswith("grant_types:")
    assert Application.objects.filter(project=project_a).count() == 0


def test_it_defaults_open_registration_to_a_public_client(client, project_a):
    body = post(client, URL_A, {"redirect_uris": ["http://127.0.0.1:33418/callback"]}).json()
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["application_type"] == "native"
    assert "client_secret" not in body


def test_it_refuses_open_registration_when_the_project_turned_it_off(client, project_a):
    project_a.open_registration_enabled = False
    project_a.save()
    response = post(client, URL_A, CLAUDE_LIKE)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Application.objects.filter(project=project_a).count() == 0


def test_it_still_registers_with_a_secret_when_open_registration_is_off(client, project_a):
    project_a.open_registration_enabled = False
    project_a.save()
    response = post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret)
    assert response.status_code == 201
    assert Application.objects.get(project=project_a).registration_path == "secret"


def test_it_refuses_secret_registration_when_the_project_turned_it_off(client, project_a):
    project_a.secret_registration_enabled = False
    project_a.save()
    response = post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert Application.objects.filter(project=project_a).count() == 0


def test_it_refuses_everything_when_both_ways_are_off_and_discovery_omits_the_endpoint(client, project_a):
    project_a.open_registration_enabled = project_a.secret_registration_enabled = False
    project_a.save()
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 401
    assert post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret).status_code == 401
    doc = client.get("/p/alpha/.well-known/oauth-authorization-server").json()
    assert "registration_endpoint" not in doc
    assert doc["client_id_metadata_document_supported"] is True
    assert Application.objects.filter(project=project_a).count() == 0


def test_it_refuses_a_secret_of_another_project(client, project_a, project_b):
    response = post(client, URL_A, CLAUDE_LIKE, secret=project_b.registration_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert Application.objects.count() == 0


def test_it_refuses_a_secret_without_the_register_permission(client, project_a):
    _, introspect_only = ProjectSecret.issue(project_a, "introspection", ["introspect"])
    response = post(client, URL_A, CLAUDE_LIKE, secret=introspect_only)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert Application.objects.count() == 0


def test_it_refuses_a_revoked_secret(client, project_a):
    ProjectSecret.objects.get(project=project_a).revoke()
    response = post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_refuses_a_garbage_authorization_header_rather_than_falling_back_to_open(client, project_a):
    response = post(client, URL_A, CLAUDE_LIKE, HTTP_AUTHORIZATION="Basic Zm9vOmJhcg==")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert Application.objects.count() == 0


def test_it_registers_into_the_project_of_the_url_only(client, project_a, project_b):
    body = post(client, URL_B, CLAUDE_LIKE).json()
    assert Application.objects.get(client_id=body["client_id"]).project == project_b
    assert body["registration_client_uri"].startswith("http://127.0.0.1:8000/p/bravo/")
    assert not Application.objects.filter(project=project_a).exists()


def test_it_answers_404_for_an_unknown_project(client, db):
    assert post(client, "/p/nope/api/oauth/register", CLAUDE_LIKE).status_code == 404


# -- abuse controls -----------------------------------------------------------------------------------

def test_it_caps_open_registered_clients_per_project(client, project_a, project_b):
    project_a.open_client_cap = 2
    project_a.save()
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 201
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 201
    refused = post(client, URL_A, CLAUDE_LIKE)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert Application.objects.filter(project=project_a).count() == 2
    # The cap is for open registration: the project's own backend still gets in, other projects too.
    assert post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret).status_code == 201
    assert post(client, URL_B, CLAUDE_LIKE).status_code == 201


def test_it_writes_nothing_for_a_registration_the_cap_refuses(client, project_a):
    project_a.open_client_cap = 1
    project_a.save()
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 201
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 429
    assert Application.objects.filter(project=project_a).count() == 1
    assert AuditEvent.objects.filter(project=project_a, kind="client.registered").count() == 1
    project_a.refresh_from_db()
    assert project_a.open_client_count == 1


def test_it_counts_open_registrations_only(client, project_a, project_b):
    post(client, URL_A, CLAUDE_LIKE)
    post(client, URL_A, CLAUDE_LIKE, secret=project_a.registration_secret)
    post(client, URL_B, CLAUDE_LIKE)
    project_a.refresh_from_db()
    project_b.refresh_from_db()
    assert (project_a.open_client_count, project_b.open_client_count) == (1, 1)


def test_it_frees_a_slot_under_the_cap_when_an_open_client_is_deleted(client, project_a):
    project_a.open_client_cap = 1
    project_a.save()
    body = post(client, URL_A, CLAUDE_LIKE).json()
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 429
    path = body["registration_client_uri"].removeprefix("http://127.0.0.1:8000")
    deleted = client.delete(path, HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}")
    assert deleted.status_code == 204
    project_a.refresh_from_db()
    assert project_a.open_client_count == 0
    assert post(client, URL_A, CLAUDE_LIKE).status_code == 201


def test_it_keeps_the_count_when_a_project_read_earlier_is_saved(client, project_a):
    # e.g. the dashboard's settings form, saving a row it read before these registrations.
    post(client, URL_A, CLAUDE_LIKE)
    post(client, URL_A, CLAUDE_LIKE)
    project_a.name = "Renamed"
    project_a.save()
    project_a.refresh_from_db()
    assert project_a.name == "Renamed" and project_a.open_client_count == 2


def test_it_stores_no_usable_secret_for_a_public_client(client, project_a):
    body = post(client, URL_A, CLAUDE_LIKE).json()
    app = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert app.client_type == "public"
    assert app.client_secret.startswith("mcpauth_hmac$")  # never compared as plain text
    for guess in ("", "none", app.client_secret):
        assert check_password(guess, app.client_secret) is False


def test_it_issues_client_ids_of_the_toolkits_shape(client, project_a):
    ids = {post(client, URL_A, CLAUDE_LIKE).json()["client_id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) == 40 and i.isascii() and i.isalnum() for i in ids)


def test_the_migration_counts_each_projects_open_clients(project_a, project_b, public_client_a, public_client_b,
                                                       confidential_client_a):
    from django.apps import apps

    migration = importlib.import_module("projects.migrations.0002_open_client_count")
    Application.objects.create(project=project_a, name="Another", registration_path="open", client_type="public",
                               authorization_grant_type="authorization-code")
    migration.count_open_clients(apps, None)
    project_a.refresh_from_db()
    project_b.refresh_from_db()
    assert (project_a.open_client_count, project_b.open_client_count) == (2, 1)


# -- malformed requests never 500 ------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'"string"', b"\xff\xfe\x00", b"{" * 5000,
                                 b"[" * 30000 + b"]" * 30000])
def test_it_answers_invalid_client_metadata_to_a_body_that_is_not_a_json_object(client, project_a, raw):
    response = client.post(URL_A, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert Application.objects.count() == 0


def test_it_refuses_an_oversized_body(client, project_a):
    response = post(client, URL_A, {**CLAUDE_LIKE, "padding": "x" * 100_000})
    assert response.status_code == 413  # API.md "Errors": a body over the endpoint's limit
    assert response.json()["error"] == "invalid_request"
    assert Application.objects.count() == 0


def test_it_never_echoes_the_secret_in_an_error(client, project_a):
    response = post(client, URL_A, {"redirect_uris": ["ftp://x"]}, secret=project_a.registration_secret)
    assert response.status_code == 400
    assert project_a.registration_secret not in response.content.decode()
