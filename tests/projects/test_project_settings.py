"""Per-project settings three ways in, one validation: the dashboard form, the management API's
PATCH, and `manage.py setproject SLUG --set key=value ... --json` (API.md "Operator command line")."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import OperatorToken
from projects.models import AuditEvent, Project

pytestmark = pytest.mark.django_db

BODY = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"}


def setproject(*args) -> dict:
    out = StringIO()
    call_command("setproject", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def register(client, slug="alpha"):
    return client.post(f"/p/{slug}/api/oauth/register", json.dumps(BODY), content_type="application/json",
                       REMOTE_ADDR="203.0.113.7")


def patch(client, token, body, slug="alpha"):
    return client.patch(f"/api/v1/projects/{slug}", body, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def alice_token(alice):
    return OperatorToken.issue(alice, "script")[1]


# --- setproject ----------------------------------------------------------------------------------

def test_setproject_sets_policies_and_prints_the_settings(project_a):
    result = setproject("alpha", "--set", "token_format=jwt", "--set", "access_token_ttl=600",
                        "--set", "signup_enabled=true", "--set", "open_registration_enabled=false",
                        "--set", "rate_limits.signin:account=10/15m", "--set", "open_client_cap=50")
    project_a.refresh_from_db()
    assert (project_a.token_format, project_a.access_token_ttl, project_a.signup_enabled) == ("jwt", 600, True)
    assert not project_a.open_registration_enabled and project_a.open_client_cap == 50
    assert project_a.rate_limits == {"signin:account": [[10, 900]]}
    assert result["slug"] == "alpha" and result["issuer"] == "http://127.0.0.1:8000/p/alpha"
    assert result["token_format"] == "jwt" and result["access_token_ttl"] == 600
    assert result["rate_limits"] == {"signin:account": "10/15m"}
    event = AuditEvent.objects.get(project=project_a, kind="settings.changed")
    assert event.actor == "manage.py setproject"
    assert set(event.detail["changed"]) == {"token_format", "access_token_ttl", "signup_enabled",
                                            "open_registration_enabled", "open_client_cap", "rate_limits"}


def test_setproject_takes_lists_and_puts_a_limit_back_to_its_default(project_a):
    Project.objects.filter(pk=project_a.pk).update(rate_limits={"register:ip": [[1, 60]]})
    result = setproject("alpha", "--set", "resources=https://b.example/mcp,https://a.example/mcp",
                        "--set", "rate_limits.register:ip=")
    assert result["resources"] == ["https://b.example/mcp", "https://a.example/mcp"]
    assert result["rate_limits"] == {}
    project_a.refresh_from_db()
    assert project_a.default_resource == "https://b.example/mcp" and project_a.rate_limits == {}


def test_setproject_refuses_an_unknown_key_and_changes_nothing(project_a):
    with pytest.raises(CommandError, match="unknown setting 'device_magic'"):
        setproject("alpha", "--set", "token_format=jwt", "--set", "device_magic=true")
    with pytest.raises(CommandError, match="rate_limits.nope"):
        setproject("alpha", "--set", "rate_limits.nope=1/1m")
    project_a.refresh_from_db()
    assert project_a.token_format == "opaque" and project_a.rate_limits == {}


@pytest.mark.parametrize("assignment, key", [
    ("access_token_ttl=5", "access_token_ttl"),
    ("token_format=paseto", "token_format"),
    ("signup_enabled=maybe", "signup_enabled"),
    ("rate_limits.signin:account=lots", "rate_limits.signin:account"),
    ("rate_limits.register:ip=0/1m", "rate_limits.register:ip"),
    ("login_mode=handoff", "login_url"),
    ("resources=ftp://x.example", "resources_text"),
])
def test_setproject_refuses_an_invalid_value_as_the_api_does(project_a, alice_token, client, assignment, key):
    with pytest.raises(CommandError, match=key.replace(".", r"\.")):
        setproject("alpha", "--set", assignment)
    project_a.refresh_from_db()
    assert project_a.access_token_ttl == 3600 and project_a.token_format == "opaque"
    assert not AuditEvent.objects.filter(kind="settings.changed").exists()


def test_setproject_exits_non_zero_for_an_unknown_key(project_a):
    """The contract's "non-zero exit": manage.py exits with the CommandError's return code."""
    with pytest.raises(CommandError) as refused:
        call_command("setproject", "alpha", "--set", "nope=1", "--json", stdout=StringIO())
    assert refused.value.returncode == 1


def test_setproject_refuses_an_unknown_project(db):
    with pytest.raises(CommandError, match="no project"):
        setproject("nope", "--set", "token_format=jwt")


def test_a_limit_set_by_the_command_line_applies_at_once(client, project_a):
    setproject("alpha", "--set", "rate_limits.register:ip=2/1m")
    assert [register(client).status_code for _ in range(3)] == [201, 201, 429]


# --- management API ------------------------------------------------------------------------------

def test_the_api_sets_and_resets_a_projects_limits(client, project_a, alice_token):
    response = patch(client, alice_token, {"rate_limits": {"register:ip": "2/1m, 20/1h"}})
    assert response.status_code == 200
    assert response.json()["rate_limits"] == {"register:ip": "2/1m, 20/1h"}
    assert [register(client).status_code for _ in range(3)] == [201, 201, 429]
    assert client.get("/api/v1/projects/alpha", HTTP_AUTHORIZATION=f"Bearer {alice_token}").json()[
        "rate_limits"] == {"register:ip": "2/1m, 20/1h"}
    response = patch(client, alice_token, {"rate_limits": {"register:ip": None}})
    assert response.status_code == 200 and response.json()["rate_limits"] == {}
    assert register(client).status_code == 201


@pytest.mark.parametrize("body", [{"rate_limits": {"register:ip": "\ud800/1m"}}, {"rate_limits": {"\ud800": "1/1m"}}])
def test_the_api_refuses_lone_surrogates_before_reading_the_settings(client, project_a, alice_token, body):
    """oauth.endpoints.parsing refuses a lone surrogate anywhere in a JSON body (400 invalid_request), nothing stored."""
    before = Project.objects.get(pk=project_a.pk).rate_limits
    response = patch(client, alice_token, body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert Project.objects.get(pk=project_a.pk).rate_limits == before


@pytest.mark.parametrize("body, field", [
    ({"rate_limits": {"register:ip": "many"}}, "rate_limits.register:ip"),
    ({"rate_limits": {"register:ip": 5}}, "rate_limits.register:ip"),
    ({"rate_limits": {"operator-signin:ip": "1/1m"}}, "rate_limits.operator-signin:ip"),
    ({"rate_limits": ["register:ip"]}, "rate_limits"),
    ({"rate_limits": {"register:ip": "\u0661/1m"}}, "rate_limits.register:ip"),
    ({"signup_enabled": "yes"}, "signup_enabled"),
    ({"open_client_cap": -1}, "open_client_cap"),
])
def test_the_api_refuses_invalid_limits_and_changes_nothing(client, project_a, alice_token, body, field):
    response = patch(client, alice_token, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and field in response.json()["fields"]
    project_a.refresh_from_db()
    assert project_a.rate_limits == {} and project_a.signup_enabled is False


def test_the_api_cannot_change_another_operators_project_limits(client, project_a, project_b, alice_token):
    response = patch(client, alice_token, {"rate_limits": {"register:ip": "1/1m"}}, slug="bravo")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    project_b.refresh_from_db()
    assert project_b.rate_limits == {}


# --- dashboard -----------------------------------------------------------------------------------

def test_the_dashboard_form_shows_and_sets_the_limits(client, alice, project_a):
    client.force_login(alice)
    page = client.get("/projects/alpha/settings").content.decode()
    assert '<label for="id_rate_limits.register:ip">Registrations per client address</label>' in page
    assert 'placeholder="60/1m, 600/1h"' in page and "Default 5/15m." in page
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "resources_text": "https://mcp.alpha.example/mcp", "open_registration_enabled": "on",
            "rate_limits.register:ip": "1/1m", "rate_limits.signin:account": "3/10m"}
    assert client.post("/projects/alpha/settings", data).status_code == 302
    project_a.refresh_from_db()
    assert project_a.rate_limits == {"register:ip": [[1, 60]], "signin:account": [[3, 600]]}
    assert 'value="3/10m"' in client.get("/projects/alpha/settings").content.decode()
    assert [register(client).status_code for _ in range(2)] == [201, 429]


def test_the_dashboard_form_refuses_a_bad_limit(client, alice, project_a):
    client.force_login(alice)
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "rate_limits.register:ip": "10 per minute"}
    response = client.post("/projects/alpha/settings", data)
    assert response.status_code == 400
    assert "is not a limit like 10/15m" in response.content.decode()
    project_a.refresh_from_db()
    assert project_a.rate_limits == {}
