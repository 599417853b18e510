"""The per-project switch `device_grant` (RFC 8628): the dashboard, the management API and
`setproject` set it; discovery, registration and both endpoints follow it at once."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from dashboard.models import OperatorToken
from projects.models import AuditEvent, Project
from tests.device_support import DEVICE_CODE, device_client, start

pytestmark = pytest.mark.django_db

METADATA = "/.well-known/oauth-authorization-server/p/alpha"


def test_it_is_on_by_default_and_discovery_says_so(client, project_a):
    assert project_a.device_grant is True
    doc = client.get(METADATA).json()
    assert DEVICE_CODE in doc["grant_types_supported"]
    assert doc["device_authorization_endpoint"] == "http://127.0.0.1:8000/p/alpha/oauth/device_authorization"


def test_setproject_turns_it_off_and_discovery_advertises_none_of_it(client, project_a):
    out = StringIO()
    call_command("setproject", "alpha", "--set", "device_grant=false", "--json", stdout=out)
    assert json.loads(out.getvalue())["device_grant"] is False
    project_a.refresh_from_db()
    assert project_a.device_grant is False
    event = AuditEvent.objects.get(project=project_a, kind="settings.changed")
    assert event.detail["changed"] == ["device_grant"]
    doc = client.get(METADATA).json()
    assert DEVICE_CODE not in doc["grant_types_supported"]
    assert "device_authorization_endpoint" not in doc


def test_setproject_turns_it_back_on(client, project_a):
    Project.objects.filter(pk=project_a.pk).update(device_grant=False)
    out = StringIO()
    call_command("setproject", "alpha", "--set", "device_grant=true", "--json", stdout=out)
    assert json.loads(out.getvalue())["device_grant"] is True
    assert "device_authorization_endpoint" in client.get(METADATA).json()


def test_setproject_refuses_a_value_that_is_not_a_boolean(project_a):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="device_grant"):
        call_command("setproject", "alpha", "--set", "device_grant=maybe", "--json", stdout=StringIO())
    project_a.refresh_from_db()
    assert project_a.device_grant is True


def test_the_management_api_reads_and_sets_it(client, alice, project_a):
    token = OperatorToken.issue(alice, "script")[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/api/v1/projects/alpha", **auth).json()["device_grant"] is True
    response = client.patch("/api/v1/projects/alpha", {"device_grant": False}, content_type="application/json", **auth)
    assert response.status_code == 200 and response.json()["device_grant"] is False
    project_a.refresh_from_db()
    assert project_a.device_grant is False
    app = device_client(project_a)
    assert start(client, app).json()["error"] == "unauthorized_client"


def test_the_management_api_refuses_a_string_for_it(client, alice, project_a):
    token = OperatorToken.issue(alice, "script")[1]
    response = client.patch("/api/v1/projects/alpha", {"device_grant": "no"}, content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and "device_grant" in response.json()["fields"]
    project_a.refresh_from_db()
    assert project_a.device_grant is True


def test_the_dashboard_shows_and_sets_it(client, alice, project_a):
    client.force_login(alice)
    page = client.get("/projects/alpha/settings").content.decode()
    assert "Device authorization grant (RFC 8628)" in page and 'name="device_grant"' in page
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "resources_text": "https://mcp.alpha.example/mcp", "cimd_enabled": "on",
            "open_registration_enabled": "on", "secret_registration_enabled": "on"}
    assert client.post("/projects/alpha/settings", data).status_code == 302  # unchecked: off
    project_a.refresh_from_db()
    assert project_a.device_grant is False
    assert "device_authorization_endpoint" not in client.get(METADATA).json()
    assert client.post("/projects/alpha/settings", {**data, "device_grant": "on"}).status_code == 302
    project_a.refresh_from_db()
    assert project_a.device_grant is True


def test_it_is_each_projects_own(client, project_a, project_b):
    Project.objects.filter(pk=project_b.pk).update(device_grant=False)
    assert "device_authorization_endpoint" in client.get(METADATA).json()
    assert "device_authorization_endpoint" not in client.get("/.well-known/oauth-authorization-server/p/bravo").json()
    assert start(client, device_client(project_a)).status_code == 200
    assert start(client, device_client(project_b)).json()["error"] == "unauthorized_client"
