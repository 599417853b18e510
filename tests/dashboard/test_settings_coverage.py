"""Every per-project policy is settable by `manage.py setproject`, the management API's PATCH and the
dashboard (API.md "Operator command line"); unknown keys and values of the wrong type are refused; the
custom domain is a checked host name; paging past the last page is 404."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import models
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard import policy
from dashboard.models import OperatorToken
from projects.models import AuditEvent, Project

pytestmark = pytest.mark.django_db

# A valid value other than the default for every setting that is not a switch, as the command line
# writes it, as JSON, and as the project then holds it. Switches (boolean fields) are flipped.
VALUES = {
    "login_url": ("https://login.alpha.example/start", "https://login.alpha.example/start",
                  "https://login.alpha.example/start"),
    "login_mode": ("handoff", "handoff", "handoff"),  # with login_url (below)
    "token_format": ("jwt", "jwt", "jwt"),
    "access_token_ttl": ("600", 600, 600),
    "refresh_token_ttl": ("86400", 86400, 86400),
    "dpop": ("allowed", "allowed", "allowed"),
    "display_name": ("Alpha Inc.", "Alpha Inc.", "Alpha Inc."),
    "logo_url": ("https://cdn.alpha.example/logo.png", "https://cdn.alpha.example/logo.png",
                 "https://cdn.alpha.example/logo.png"),
    "accent_color": ("#112233", "#112233", "#112233"),
    "open_client_cap": ("50", 50, 50),
    "unused_client_days": ("3", 3, 3),
    "idle_client_days": ("30", 30, 30),
    "key_rotation_days": ("0", 0, 0),
    "custom_domain": ("Auth.Alpha.Example", "Auth.Alpha.Example", "auth.alpha.example"),
    "resources": ("https://b.example/mcp,https://a.example/mcp", ["https://b.example/mcp", "https://a.example/mcp"],
                  ["https://b.example/mcp", "https://a.example/mcp"]),
    "scopes": ('[{"name": "files:read", "description": "Read files"}]',
               [{"name": "files:read", "description": "Read files"}],
               [{"name": "files:read", "description": "Read files"}]),
    "rate_limits": ('{"signin:account": "10/15m"}', {"signin:account": "10/15m"}, {"signin:account": [[10, 900]]}),
}
NEEDS = {"login_mode": "login_url"}  # set together: handoff mode needs its login page


def is_switch(key: str) -> bool:
    return key in {f.name for f in Project._meta.fields} and isinstance(Project._meta.get_field(key),
                                                                       models.BooleanField)


def cases(project) -> list[tuple[str, dict, dict, dict]]:
    """(key, CLI words, JSON patch, expected model values) for every setting."""
    found = []
    for key in policy.SETTINGS:
        keys = [NEEDS[key], key] if key in NEEDS else [key]
        cli, patch, expected = {}, {}, {}
        for name in keys:
            if is_switch(name):
                flipped = not getattr(project, name)
                cli[name], patch[name], expected[name] = str(flipped).lower(), flipped, flipped
            else:
                cli[name], patch[name], expected[name] = VALUES[name]
        found.append((key, cli, patch, expected))
    return found


def setproject(*args) -> dict:
    out = StringIO()
    call_command("setproject", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def patch(http, token, body, slug="alpha"):
    return http.patch(f"/api/v1/projects/{slug}", json.dumps(body), content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def alice_token(alice):
    return OperatorToken.issue(alice, "script")[1]


def test_every_setting_that_is_not_a_switch_has_a_test_value():
    assert {k for k in policy.SETTINGS if not is_switch(k)} == set(VALUES)


def test_setproject_sets_every_setting(project_a, project_b):
    for key, cli, _, expected in cases(project_a):
        words = [w for name, value in cli.items() for w in ("--set", f"{name}={value}")]
        setproject("alpha", *words)
        fresh = Project.objects.get(pk=project_a.pk)
        assert {name: getattr(fresh, name) for name in expected} == expected, key
    assert Project.objects.get(pk=project_b.pk).custom_domain is None  # the other project untouched
    assert not AuditEvent.objects.filter(project=project_b, kind="settings.changed").exists()


def test_the_api_sets_every_setting(client, project_a, project_b, alice, alice_token):
    # `require_mfa` is an owner's to turn on once they have a second factor themselves (docs/operators.md).
    TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    for key, _, body, expected in cases(project_a):
        response = patch(client, alice_token, body)
        assert response.status_code == 200, (key, response.json())
        fresh = Project.objects.get(pk=project_a.pk)
        assert {name: getattr(fresh, name) for name in expected} == expected, key
    assert response.json()["custom_domain"] == "auth.alpha.example"
    assert Project.objects.get(pk=project_b.pk).custom_domain is None


def test_the_api_cannot_set_another_operators_project(client, project_a, project_b, alice_token):
    response = patch(client, alice_token, {"custom_domain": "auth.bravo.example", "key_rotation_days": 1},
                     slug="bravo")

    assert response.status_code == 404 and response.json()["error"] == "not_found"
    project_b.refresh_from_db()
    assert project_b.custom_domain is None and project_b.key_rotation_days == 90


def test_the_api_refuses_an_unknown_key_and_changes_nothing(client, project_a, alice_token):
    response = patch(client, alice_token, {"token_format": "jwt", "device_magic": True})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and "device_magic" in response.json()["fields"]
    project_a.refresh_from_db()
    assert project_a.token_format == "opaque"


def test_the_api_ignores_read_only_fields_sent_back_unchanged_and_refuses_changed_ones(client, project_a,
                                                                                      alice_token):
    shown = client.get("/api/v1/projects/alpha", HTTP_AUTHORIZATION=f"Bearer {alice_token}").json()

    unchanged = patch(client, alice_token, shown | {"access_token_ttl": 900})
    renamed = patch(client, alice_token, {"slug": "other", "access_token_ttl": 1200})

    assert unchanged.status_code == 200 and unchanged.json()["access_token_ttl"] == 900
    assert renamed.status_code == 400 and renamed.json()["fields"] == {"slug": ["Read-only."]}
    project_a.refresh_from_db()
    assert project_a.slug == "alpha" and project_a.access_token_ttl == 900


@pytest.mark.parametrize("body", [[], "token_format=jwt", 5])
def test_the_api_refuses_a_body_that_is_not_an_object(client, project_a, alice_token, body):
    response = patch(client, alice_token, body)

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("key, value", [
    ("access_token_ttl", [600]), ("access_token_ttl", True), ("access_token_ttl", "ten"),
    ("open_client_cap", {"n": 5}), ("key_rotation_days", -1), ("idle_client_days", 1.5),
    ("custom_domain", ["auth.alpha.example"]), ("custom_domain", 7), ("token_format", False),
    ("openid", "true"), ("resources", "https://a.example/mcp"), ("scopes", {"name": "x"}),
    ("rate_limits", "signin:account=10/15m"),
])
def test_the_api_refuses_a_value_of_the_wrong_type(client, project_a, alice_token, key, value):
    before = Project.objects.filter(pk=project_a.pk).values().get()

    response = patch(client, alice_token, {key: value})

    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "invalid_request" and key in str(response.json()["fields"])
    assert Project.objects.filter(pk=project_a.pk).values().get() == before


@pytest.mark.parametrize("assignment", ["access_token_ttl=ten", "key_rotation_days=-1", "openid=maybe",
                                        "custom_domain=https://auth.alpha.example/", "idle_client_days=1.5"])
def test_setproject_refuses_a_value_of_the_wrong_type_with_a_non_zero_exit(project_a, assignment):
    with pytest.raises(CommandError) as refused:
        setproject("alpha", "--set", assignment)
    assert refused.value.returncode == 1
    assert assignment.split("=")[0] in str(refused.value)


@pytest.mark.parametrize("domain", [
    "https://auth.alpha.example", "auth.alpha.example/p", "auth.alpha.example:8443", "203.0.113.7", "[::1]",
    "::1", "localhost", "127.0.0.1", "alpha", "-auth.alpha.example", "auth..alpha.example", "auth_x.alpha.example",
    "bücher.example", "a" * 64 + ".example", "auth.alpha.123", "auth alpha.example",
])
def test_a_custom_domain_must_be_a_host_name(client, project_a, alice_token, domain):
    response = patch(client, alice_token, {"custom_domain": domain})

    assert response.status_code == 400 and "custom_domain" in response.json()["fields"]
    project_a.refresh_from_db()
    assert project_a.custom_domain is None


def test_a_custom_domain_is_unique_across_projects(client, project_a, project_b, alice_token):
    Project.objects.filter(pk=project_b.pk).update(custom_domain="auth.shared.example")

    response = patch(client, alice_token, {"custom_domain": "AUTH.shared.example."})

    assert response.status_code == 400 and "custom_domain" in response.json()["fields"]
    project_a.refresh_from_db()
    assert project_a.custom_domain is None


def test_a_custom_domain_set_by_the_command_line_serves_the_issuer_and_blank_removes_it(client, project_a):
    setproject("alpha", "--set", "custom_domain=Auth.Alpha.Example")

    served = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="auth.alpha.example")
    assert served.status_code == 200 and served.json()["issuer"] == "https://auth.alpha.example"

    assert setproject("alpha", "--set", "custom_domain=")["custom_domain"] is None
    assert client.get("/.well-known/oauth-authorization-server", HTTP_HOST="auth.alpha.example").status_code == 404


def test_the_dashboard_sets_the_custom_domain_and_the_reaper_window(client, alice, project_a):
    client.force_login(alice)
    assert 'name="custom_domain"' in client.get("/projects/alpha/settings").content.decode()
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "resources_text": "https://mcp.alpha.example/mcp", "custom_domain": "Auth.Alpha.Example",
            "unused_client_days": 2, "idle_client_days": 20, "key_rotation_days": 7, "open_client_cap": 9}

    assert client.post("/projects/alpha/settings", data).status_code == 302

    project_a.refresh_from_db()
    assert (project_a.custom_domain, project_a.unused_client_days, project_a.idle_client_days,
            project_a.key_rotation_days, project_a.open_client_cap) == ("auth.alpha.example", 2, 20, 7, 9)


def test_the_dashboard_refuses_an_ip_address_as_custom_domain(client, alice, project_a):
    client.force_login(alice)
    data = {"login_mode": "hosted", "token_format": "opaque", "access_token_ttl": 3600,
            "refresh_token_ttl": 2592000, "accent_color": "#4f46e5", "scopes_text": "mcp:tools",
            "resources_text": "https://mcp.alpha.example/mcp", "custom_domain": "203.0.113.7"}

    response = client.post("/projects/alpha/settings", data)

    assert response.status_code == 400 and "not an IP address" in response.content.decode()
    project_a.refresh_from_db()
    assert project_a.custom_domain is None


# --- paging ----------------------------------------------------------------------------------------

def test_the_audit_listing_answers_404_past_its_last_page_and_400_for_a_bad_page(client, project_a, project_b,
                                                                                 alice_token):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {alice_token}"}
    AuditEvent.objects.bulk_create([AuditEvent(project=project_a, kind="test.event") for _ in range(101)])

    first, second = (client.get("/api/v1/projects/alpha/audit-events", {"page": n}, **auth) for n in (1, 2))
    past = client.get("/api/v1/projects/alpha/audit-events", {"page": 3}, **auth)
    bad = client.get("/api/v1/projects/alpha/audit-events", {"page": "x"}, **auth)
    foreign = client.get("/api/v1/projects/bravo/audit-events", {"page": 1}, **auth)

    assert first.status_code == 200 and len(first.json()["results"]) == 100 and first.json()["pages"] == 2
    assert second.status_code == 200 and second.json()["page"] == 2
    assert past.status_code == 404 and past.json()["error"] == "not_found"
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert foreign.status_code == 404


def test_an_empty_audit_listing_has_its_first_page(client, project_b, alice, alice_token, project_a):
    AuditEvent.objects.filter(project=project_a).delete()
    response = client.get("/api/v1/projects/alpha/audit-events", HTTP_AUTHORIZATION=f"Bearer {alice_token}")

    assert response.status_code == 200 and response.json()["results"] == [] and response.json()["page"] == 1
