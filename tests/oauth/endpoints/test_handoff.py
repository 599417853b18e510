"""Operator login handoff (API.md "Authorization", login mode `handoff`)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from oauth.models import AuthorizationRequest, Consent, Grant
from projects.models import AuditEvent, ProjectSecret, User
from tests.authz import LOOPBACK_REDIRECT, authorize_path, first_party_client, query_of, without_query

pytestmark = pytest.mark.django_db

LOGIN_URL = "https://login.alpha.example/sso"


@pytest.fixture
def handoff_project(project_a):
    project_a.login_mode, project_a.login_url = "handoff", LOGIN_URL
    project_a.save()
    return project_a


def start(browser, project, app, **params) -> AuthorizationRequest:
    response = browser.get(authorize_path(project, app, **params))
    pending = AuthorizationRequest.objects.get(client=app)
    assert response["Location"] == f"{LOGIN_URL}?authorization_request={pending.pk}"
    return pending


def api(project, pending, action: str = "") -> str:
    return f"/p/{project.slug}/api/oauth/authorization-requests/{pending.pk}" + (f"/{action}" if action else "")


def call(client, path: str, secret: str, body: dict | None = None):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if body is None and not path.endswith(("complete", "deny")):
        return client.get(path, **auth)
    return client.post(path, json.dumps(body or {}), content_type="application/json", **auth)


def test_it_describes_the_pending_request(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a, scope="mcp:tools mcp:prompts")
    response = call(client, api(handoff_project, pending), handoff_project.registration_secret)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == pending.pk
    assert body["client_id"] == public_client_a.client_id
    assert body["client_name"] == "Public MCP client"
    assert body["redirect_host"] == "127.0.0.1"
    assert body["scopes"] == ["mcp:tools", "mcp:prompts"]
    assert body["resource"] == "https://mcp.alpha.example/mcp"
    assert body["verified_domain"] is None


def test_it_names_a_native_apps_scheme_not_the_host_of_its_uri(client, handoff_project, public_client_a):
    # A private-use URI's "host" proves nothing (any app may register evil://claude.ai/cb): the scheme is shown.
    public_client_a.redirect_uris += " cursor://anysphere.cursor-mcp/oauth/callback"
    public_client_a.save()
    pending = start(client, handoff_project, public_client_a, redirect_uri="cursor://anysphere.cursor-mcp/oauth/callback")
    body = call(client, api(handoff_project, pending), handoff_project.registration_secret).json()
    assert body["redirect_host"] == "cursor://"


def test_it_requires_a_secret_holding_handoff(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    _, without_handoff = ProjectSecret.issue(handoff_project, "introspection only", ["introspect"])
    for secret in ("", without_handoff, "mcps_" + "x" * 43):
        for action in ("", "complete", "deny"):
            response = call(client, api(handoff_project, pending, action), secret, {"subject": "u1"} if action else None)
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_token"
    assert AuthorizationRequest.objects.get().status == "pending" and AuthorizationRequest.objects.get().user is None


def test_it_refuses_another_projects_secret(client, handoff_project, public_client_a, project_b):
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "complete"), project_b.registration_secret, {"subject": "u1"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    # ...and under the other project's issuer the request does not exist.
    response = call(client, api(project_b, pending, "complete"), project_b.registration_secret, {"subject": "u1"})
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert AuthorizationRequest.objects.get().user is None


def test_complete_continues_to_consent(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret,
                    {"subject": "op-user-42", "claims": {"email": "x@alpha.example"}})
    assert response.status_code == 200
    assert response.json() == {"redirect_to": f"{handoff_project.issuer}/oauth/consent?request={pending.pk}"}
    user = User.objects.get(project=handoff_project, subject="op-user-42")
    pending.refresh_from_db()
    assert pending.user == user and pending.claims == {"email": "x@alpha.example"}
    assert not user.has_usable_password()
    # The browser that started the flow carries on at the consent page.
    consent = client.get(response.json()["redirect_to"].removeprefix("http://127.0.0.1:8000"))
    assert consent.status_code == 200 and b'value="allow">Allow</button>' in consent.content
    done = client.post(response.json()["redirect_to"].removeprefix("http://127.0.0.1:8000"), {"decision": "allow"})
    assert set(query_of(done["Location"])) == {"code", "state", "iss"}
    assert Grant.objects.get().user == user


def test_complete_goes_straight_back_to_a_first_party_client(client, handoff_project):
    app = first_party_client(handoff_project)
    pending = start(client, handoff_project, app)
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret,
                    {"subject": "op-user-42", "scope": "mcp:tools", "claims": {"name": "Op User"}})
    redirect_to = response.json()["redirect_to"]
    assert without_query(redirect_to) == LOOPBACK_REDIRECT
    params = query_of(redirect_to)
    assert set(params) == {"code", "state", "iss"} and params["iss"] == handoff_project.issuer
    grant = Grant.objects.get(application=app)
    assert grant.user.subject == "op-user-42" and grant.scope == "mcp:tools"
    assert json.loads(grant.claims) == {"name": "Op User"}
    assert AuthorizationRequest.objects.get().status == "completed"
    event = AuditEvent.objects.get(project=handoff_project, kind="handoff.completed")
    assert event.client_id == app.client_id and event.detail["subject"] == "op-user-42"


def test_complete_skips_a_remembered_consent(client, handoff_project, public_client_a):
    user = User.objects.create_end_user(handoff_project, subject="op-user-42")
    Consent.remember(user, public_client_a, handoff_project.scope_names)
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret,
                    {"subject": "op-user-42"})
    assert without_query(response.json()["redirect_to"]) == LOOPBACK_REDIRECT
    assert Grant.objects.get().user == user  # the same end user: get-or-create by subject
    assert User.objects.filter(project=handoff_project, subject="op-user-42").count() == 1


def test_complete_works_once(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    first = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret, {"subject": "a"})
    second = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret, {"subject": "b"})
    deny = call(client, api(handoff_project, pending, "deny"), handoff_project.registration_secret)
    assert first.status_code == 200
    assert second.status_code == 400 and second.json()["error"] == "invalid_request"
    assert deny.status_code == 400 and deny.json()["error"] == "invalid_request"
    assert AuthorizationRequest.objects.get().user.subject == "a"
    assert not User.objects.filter(subject="b").exists()


def test_it_expires_after_ten_minutes(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    assert timedelta(minutes=9) < pending.expires_at - timezone.now() <= timedelta(minutes=10)
    AuthorizationRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    for action, body in (("", None), ("complete", {"subject": "a"}), ("deny", {})):
        response = call(client, api(handoff_project, pending, action), handoff_project.registration_secret, body)
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert not User.objects.filter(subject="a").exists()


def test_the_operator_may_narrow_but_not_widen_the_scope(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a, scope="mcp:tools")
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret,
                    {"subject": "a", "scope": "mcp:tools mcp:prompts"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    assert AuthorizationRequest.objects.get().user is None


@pytest.mark.parametrize("body", [{}, {"subject": ""}, {"subject": 7}, {"subject": "a", "claims": "x"},
                                  {"subject": "a", "scope": ["mcp:tools"]}, ["subject"]])
def test_complete_refuses_a_bad_body(client, handoff_project, public_client_a, body):
    pending = start(client, handoff_project, public_client_a)
    response = client.post(api(handoff_project, pending, "complete"), json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {handoff_project.registration_secret}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert AuthorizationRequest.objects.get().user is None


def test_complete_refuses_a_disabled_end_user(client, handoff_project, public_client_a):
    gone = User.objects.create_end_user(handoff_project, subject="gone")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret,
                    {"subject": "gone"})
    assert response.status_code == 403 and response.json()["error"] == "access_denied"
    assert AuthorizationRequest.objects.get().user is None


def test_deny_sends_the_browser_back_with_access_denied(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "deny"), handoff_project.registration_secret)
    redirect_to = response.json()["redirect_to"]
    assert without_query(redirect_to) == LOOPBACK_REDIRECT
    params = query_of(redirect_to)
    assert params["error"] == "access_denied" and params["state"] == "st-123" and params["iss"] == handoff_project.issuer
    assert AuthorizationRequest.objects.get().status == "denied"
    assert Grant.objects.count() == 0


def test_an_unknown_request_is_not_found(client, handoff_project):
    path = f"/p/{handoff_project.slug}/api/oauth/authorization-requests/nope"
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {handoff_project.registration_secret}")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize("body", [{"subject": "a\x00b"}, {"subject": "a", "claims": {"k": "v\x00"}}])
def test_complete_refuses_nul_characters(client, handoff_project, public_client_a, body):
    pending = start(client, handoff_project, public_client_a)
    response = call(client, api(handoff_project, pending, "complete"), handoff_project.registration_secret, body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert AuthorizationRequest.objects.get().user is None


def test_a_malformed_request_id_is_not_found(client, handoff_project):
    path = f"/p/{handoff_project.slug}/api/oauth/authorization-requests/a.b/complete"
    response = client.post(path, "{}", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {handoff_project.registration_secret}")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_a_request_id_with_a_nul_is_a_bad_request(client, handoff_project):
    path = f"/p/{handoff_project.slug}/api/oauth/authorization-requests/a%00b/complete"
    response = client.post(path, "{}", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {handoff_project.registration_secret}")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_expired_requests_are_listed_for_the_reaper(client, handoff_project, public_client_a):
    pending = start(client, handoff_project, public_client_a)
    assert not AuthorizationRequest.objects.expired(handoff_project).exists()
    assert list(AuthorizationRequest.objects.expired(handoff_project, now=pending.expires_at)) == [pending]
