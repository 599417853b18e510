"""RFC 7592 client management at registration_client_uri: read, update (token rotated), delete;
a registration access token of one client or project never reaches another."""

import json

import pytest
from django.contrib.auth.hashers import check_password

from oauth.models import AccessToken, Application
from projects.models import AuditEvent

URL_A = "/p/alpha/api/oauth/register"
URL_B = "/p/bravo/api/oauth/register"
BODY = {"client_name": "Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"],
        "token_endpoint_auth_method": "none", "scope": "mcp:tools"}


def register(client, url=URL_A, body=BODY, secret=None) -> dict:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    response = client.post(url, data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 201
    return response.json()


def path_of(info: dict) -> str:
    return info["registration_client_uri"].removeprefix("http://127.0.0.1:8000")


def call(client, method, path, token, body=None):
    kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is not None and method in ("put", "post"):
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def test_it_reads_the_client_with_its_registration_access_token(client, project_a):
    info = register(client)
    response = call(client, "get", path_of(info), info["registration_access_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == info["client_id"]
    assert body["client_name"] == "Inspector"
    assert body["redirect_uris"] == BODY["redirect_uris"]
    assert body["scope"] == "mcp:tools"
    assert body["client_id_issued_at"] == info["client_id_issued_at"]
    assert body["registration_client_uri"] == info["registration_client_uri"]
    assert "registration_access_token" not in body  # not rotated on read, and never echoed
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("token", [None, "", "mcpreg_wrong", "Basic abc"])
def test_it_refuses_a_missing_or_wrong_token(client, project_a, token):
    info = register(client)
    response = call(client, "get", path_of(info), token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_the_token_of_another_client(client, project_a):
    first, second = register(client), register(client)
    for method in ("get", "put", "delete"):
        response = call(client, method, path_of(second), first["registration_access_token"],
                        {**BODY, "client_id": second["client_id"], "client_name": "Hijacked"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    assert Application.objects.get(client_id=second["client_id"]).name == "Inspector"


def test_it_refuses_a_token_of_project_a_for_a_client_of_project_b(client, project_a, project_b):
    mine = register(client, URL_A)
    theirs = register(client, URL_B)
    for method in ("get", "put", "delete"):
        response = call(client, method, path_of(theirs), mine["registration_access_token"],
                        {**BODY, "client_id": theirs["client_id"], "client_name": "Hijacked"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    assert Application.objects.get(project=project_b, client_id=theirs["client_id"]).name == "Inspector"


def test_it_refuses_a_token_presented_at_another_projects_issuer_for_the_same_client_id(client, project_a, project_b):
    info = register(client, URL_A)
    # Same client_id, but under project B's issuer: the lookup is per project, so nothing is there.
    response = call(client, "get", f"/p/bravo/api/oauth/register/{info['client_id']}",
                    info["registration_access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_refuses_a_project_secret_as_a_registration_access_token(client, project_a):
    info = register(client)
    response = call(client, "get", path_of(info), project_a.registration_secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_refuses_management_of_clients_that_did_not_come_through_registration(client, public_client_a):
    response = call(client, "get", f"/p/alpha/api/oauth/register/{public_client_a.client_id}", "mcpreg_x")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_answers_the_same_for_an_unknown_client(client, project_a):
    response = call(client, "get", "/p/alpha/api/oauth/register/nope", "mcpreg_whatever")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_updates_the_client_and_rotates_the_token(client, project_a):
    info = register(client)
    old_token = info["registration_access_token"]
    update = {**BODY, "client_id": info["client_id"], "client_name": "Inspector 2",
              "redirect_uris": ["http://127.0.0.1/cb"], "registration_access_token": old_token}
    response = call(client, "put", path_of(info), old_token, update)
    assert response.status_code == 200
    body = response.json()
    assert body["client_name"] == "Inspector 2"
    assert body["redirect_uris"] == ["http://127.0.0.1/cb"]
    new_token = body["registration_access_token"]
    assert new_token != old_token
    app = Application.objects.get(project=project_a, client_id=info["client_id"])
    assert app.name == "Inspector 2" and app.redirect_uris == "http://127.0.0.1/cb"
    assert call(client, "get", path_of(info), old_token).status_code == 401
    assert call(client, "get", path_of(info), new_token).status_code == 200
    assert AuditEvent.objects.filter(project=project_a, kind="client.updated", client_id=info["client_id"]).exists()


def test_it_treats_an_update_as_a_full_replacement(client, project_a):
    info = register(client)
    update = {"client_id": info["client_id"], "redirect_uris": BODY["redirect_uris"]}
    body = call(client, "put", path_of(info), info["registration_access_token"], update).json()
    assert "scope" not in body and "client_name" not in body
    assert Application.objects.get(client_id=info["client_id"]).name == ""


@pytest.mark.parametrize("client_id", [None, "someone-else"])
def test_it_refuses_an_update_without_the_matching_client_id(client, project_a, client_id):
    info = register(client)
    update = {**BODY, "client_name": "Changed", **({"client_id": client_id} if client_id else {})}
    response = call(client, "put", path_of(info), info["registration_access_token"], update)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert Application.objects.get(client_id=info["client_id"]).name == "Inspector"


def test_it_validates_updates_like_registrations(client, project_a):
    info = register(client)
    token = info["registration_access_token"]
    bad_uri = call(client, "put", path_of(info), token,
                   {**BODY, "client_id": info["client_id"], "redirect_uris": ["http://evil.example/cb"]})
    assert bad_uri.status_code == 400 and bad_uri.json()["error"] == "invalid_redirect_uri"
    # An open-registered client stays public: the method is narrowed (RFC 7591 §3.2.1), no secret issued.
    confidential = call(client, "put", path_of(info), token,
                        {**BODY, "client_id": info["client_id"], "token_endpoint_auth_method": "client_secret_basic"})
    assert confidential.status_code == 200
    assert confidential.json()["token_endpoint_auth_method"] == "none" and "client_secret" not in confidential.json()
    assert Application.objects.get(client_id=info["client_id"]).narrowed["token_endpoint_auth_method"][0]["value"] \
        == "client_secret_basic"
    token = confidential.json()["registration_access_token"]
    first_party = call(client, "put", path_of(info), token, {**BODY, "client_id": info["client_id"], "first_party": True})
    assert first_party.status_code == 400 and first_party.json()["error"] == "invalid_client_metadata"
    app = Application.objects.get(client_id=info["client_id"])
    assert app.client_type == "public" and not app.first_party
    assert app.redirect_uris == BODY["redirect_uris"][0]
    # A refused update does not rotate the token.
    assert call(client, "get", path_of(info), token).status_code == 200


def test_it_keeps_a_confidential_clients_secret_across_updates(client, project_a):
    info = register(client, body={**BODY, "token_endpoint_auth_method": "client_secret_basic"},
                    secret=project_a.registration_secret)
    update = {**BODY, "token_endpoint_auth_method": "client_secret_basic", "client_id": info["client_id"],
              "client_secret": info["client_secret"], "client_name": "Renamed"}
    response = call(client, "put", path_of(info), info["registration_access_token"], update)
    assert response.status_code == 200
    assert "client_secret" not in response.json()
    assert response.json()["client_secret_expires_at"] == 0
    app = Application.objects.get(client_id=info["client_id"])
    assert check_password(info["client_secret"], app.client_secret)


def test_it_refuses_an_update_with_a_wrong_client_secret(client, project_a):
    info = register(client, body={**BODY, "token_endpoint_auth_method": "client_secret_basic"},
                    secret=project_a.registration_secret)
    update = {**BODY, "token_endpoint_auth_method": "client_secret_basic", "client_id": info["client_id"],
              "client_secret": "mcpcs_chosen-by-the-client"}
    response = call(client, "put", path_of(info), info["registration_access_token"], update)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert check_password(info["client_secret"], Application.objects.get(client_id=info["client_id"]).client_secret)


def test_it_issues_a_secret_when_a_secret_registered_client_turns_confidential(client, project_a):
    info = register(client, secret=project_a.registration_secret)
    assert "client_secret" not in info
    update = {**BODY, "client_id": info["client_id"], "token_endpoint_auth_method": "client_secret_post"}
    body = call(client, "put", path_of(info), info["registration_access_token"], update).json()
    assert body["client_secret"].startswith("mcpcs_")
    app = Application.objects.get(client_id=info["client_id"])
    assert app.client_type == "confidential" and check_password(body["client_secret"], app.client_secret)


def test_it_deletes_the_client_and_everything_it_holds(client, project_a):
    info = register(client)
    app = Application.objects.get(client_id=info["client_id"])
    AccessToken.objects.create(application=app, token="", token_checksum="c" * 64,
                               expires="2099-01-01T00:00:00Z", scope="mcp:tools")
    response = call(client, "delete", path_of(info), info["registration_access_token"])
    assert response.status_code == 204
    assert not Application.objects.filter(pk=app.pk).exists()
    assert not AccessToken.objects.filter(application_id=app.pk).exists()
    assert call(client, "get", path_of(info), info["registration_access_token"]).status_code == 401
    event = AuditEvent.objects.get(project=project_a, kind="client.deleted")
    assert event.client_id == info["client_id"] and event.detail["path"] == "open"


def test_it_refuses_post_on_the_client_configuration_endpoint(client, project_a):
    info = register(client)
    response = call(client, "post", path_of(info), info["registration_access_token"], {})
    assert response.status_code == 405
    assert Application.objects.filter(client_id=info["client_id"]).exists()
