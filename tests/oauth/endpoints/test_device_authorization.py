"""RFC 8628 §3.1–3.2: POST {issuer}/oauth/device_authorization, per project."""

import re

import pytest

from oauth.grants.device_code import device_code_digest, user_code_digest
from oauth.models import DeviceGrant
from tests.device_support import device_client, start

pytestmark = pytest.mark.django_db

ISSUER = "http://127.0.0.1:8000/p/alpha"
USER_CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")


def test_it_answers_with_the_codes_the_uris_the_lifetime_and_the_interval(client, project_a):
    app = device_client(project_a)
    response = start(client, app)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert list(body) == ["device_code", "user_code", "verification_uri", "verification_uri_complete",
                          "expires_in", "interval"]
    assert USER_CODE.fullmatch(body["user_code"])
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)


def test_it_keeps_only_digests_of_the_codes_with_the_project_client_scopes_and_resource(client, project_a):
    app = device_client(project_a)
    body = start(client, app).json()
    row = DeviceGrant.objects.get()
    assert (row.project, row.application, row.client_id) == (project_a, app, app.client_id)
    assert row.device_code == device_code_digest(body["device_code"]) != body["device_code"]
    assert row.user_code == user_code_digest(body["user_code"].replace("-", ""))
    assert body["user_code"].replace("-", "") not in row.user_code
    assert row.scope == "mcp:tools mcp:resources mcp:prompts offline_access"
    assert row.resource == ["https://mcp.alpha.example/mcp"]
    assert (row.status, row.user, row.redeemed_at) == (DeviceGrant.AUTHORIZATION_PENDING, None, None)


def test_it_narrows_scopes_as_the_authorization_endpoint_does(client, project_a):
    app = device_client(project_a)
    app.metadata["scope"] = "mcp:tools"
    app.save()
    assert start(client, app, scope="mcp:tools mcp:prompts").status_code == 200
    assert DeviceGrant.objects.get().scope == "mcp:tools"


def test_it_refuses_an_unknown_scope(client, project_a):
    response = start(client, device_client(project_a), scope="admin")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    assert not DeviceGrant.objects.exists()


def test_it_binds_the_requested_resource(client, project_a):
    start(client, device_client(project_a), resource="https://files.alpha.example/mcp")
    assert DeviceGrant.objects.get().resource == ["https://files.alpha.example/mcp"]


def test_it_refuses_a_resource_the_project_does_not_serve(client, project_a):
    response = start(client, device_client(project_a), resource="https://mcp.bravo.example/mcp")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_target")
    assert not DeviceGrant.objects.exists()


def test_it_refuses_a_client_that_did_not_register_the_grant(client, project_a, public_client_a):
    response = start(client, public_client_a)
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")
    assert "urn:ietf:params:oauth:grant-type:device_code" in response.json()["error_description"]
    assert not DeviceGrant.objects.exists()


def test_it_refuses_every_client_where_the_project_turned_the_grant_off(client, project_a):
    app = device_client(project_a)
    project_a.device_grant = False
    project_a.save()
    response = start(client, app)
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")
    assert not DeviceGrant.objects.exists()


def test_it_does_not_know_another_projects_client(client, project_a, project_b):
    app = device_client(project_a)
    response = client.post("/p/bravo/oauth/device_authorization", f"client_id={app.client_id}",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    assert not DeviceGrant.objects.exists()


def test_it_authenticates_a_confidential_client(client, project_a):
    app = device_client(project_a, confidential=True)
    assert start(client, app, scope="mcp:tools").status_code == 200
    app.plain_secret = "mcpcs_wrong"
    response = start(client, app, scope="mcp:tools")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert DeviceGrant.objects.count() == 1


def test_it_refuses_a_missing_client_id(client, project_a):
    response = client.post("/p/alpha/oauth/device_authorization", "", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert not DeviceGrant.objects.exists()


def test_it_takes_only_post(client, project_a):
    response = client.get("/p/alpha/oauth/device_authorization")
    assert (response.status_code, response.json()["error"]) == (405, "invalid_request")
