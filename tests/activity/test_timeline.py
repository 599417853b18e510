"""Grant timelines (issue 21): each grant's story in order, from registration to revocation, with its
warnings, through the real endpoints; on the end user's and the client's pages and in the API."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from activity import record, rollup, timeline
from dashboard.models import OperatorToken
from oauth.models import Application, RefreshToken
from projects.models import ProjectSecret
from tests.authz import LOOPBACK_REDIRECT, VERIFIER, authorize_path, query_of, sign_in_as
from tests.token_support import post_form, token_url

AGENT = "ClaudeDesktop/1.0 (test)"
HOME, CAFE = "203.0.113.5", "198.51.100.7"  # two /24 networks
BODY = {"client_name": "Claude", "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"]}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def register(http, project) -> Application:
    answer = http.post(f"/p/{project.slug}/api/oauth/register", data=json.dumps(BODY), content_type="application/json")
    assert answer.status_code == 201
    return Application.objects.get(project=project, client_id=answer.json()["client_id"])


def authorize(http, project, client, user) -> str:
    """Signed in, the end user allows; the code."""
    sign_in_as(http, user)
    consent = http.get(authorize_path(project, client, scope="mcp:tools offline_access"))["Location"]
    return query_of(http.post(consent, {"decision": "allow"})["Location"])["code"]


def token(http, project, client, ip, **form) -> dict:
    answer = post_form(http, token_url(project), {"client_id": client.client_id, **form}, REMOTE_ADDR=ip,
                       HTTP_USER_AGENT=AGENT)
    assert answer.status_code == 200, answer.content
    return answer.json()


def introspect(http, project, secret, access_token) -> None:
    answer = post_form(http, f"/p/{project.slug}/oauth/introspect", {"token": access_token},
                       HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert answer.json()["active"] is True


@pytest.fixture
def story(client, project_a, end_user_a):
    return tell_story(client, project_a, end_user_a)


def tell_story(client, project_a, end_user_a) -> Application:
    """Registered, authorized, redeemed, used twice (one first use), refreshed from home then from a
    café within minutes, and a long-spent refresh token replayed (reuse: the grant is revoked)."""
    secret = ProjectSecret.issue(project_a, "mcp server", ["introspect"])[1]
    app = register(client, project_a)
    code = authorize(client, project_a, app, end_user_a)
    first = token(client, project_a, app, HOME, grant_type="authorization_code", code=code, code_verifier=VERIFIER,
                  redirect_uri=LOOPBACK_REDIRECT)
    introspect(client, project_a, secret, first["access_token"])
    introspect(client, project_a, secret, first["access_token"])
    second = token(client, project_a, app, HOME, grant_type="refresh_token", refresh_token=first["refresh_token"])
    token(client, project_a, app, CAFE, grant_type="refresh_token", refresh_token=second["refresh_token"])
    RefreshToken.objects.filter(application=app, revoked__isnull=False).update(
        revoked=timezone.now() - timedelta(hours=1))  # spent an hour ago: past the grace window
    replay = post_form(client, token_url(project_a), {"grant_type": "refresh_token", "client_id": app.client_id,
                                                      "refresh_token": first["refresh_token"]})
    assert replay.json()["error"] == "invalid_grant"
    rollup.run(newest=record.minute_now())  # with Redis, the buffered steps reach the audit log
    return app


STORY = ["client.registered", "authorization.code_issued", "consent.allowed", "token.code_redeemed",
         "token.first_used", "token.refreshed", "token.refreshed", "token.refresh_reuse_detected"]


def test_a_grant_tells_its_story_in_order_with_its_warnings(client, alice, project_a, end_user_a, story):
    answer = client.get(f"/api/v1/projects/{project_a.slug}/grants?subject={end_user_a.subject}",
                        **bearer(OperatorToken.issue(alice, "ci")[1]))
    assert answer.status_code == 200
    (grant,) = answer.json()["results"]
    assert (grant["client_id"], grant["subject"]) == (story.client_id, end_user_a.subject)
    assert [e["kind"] for e in grant["events"]] == STORY
    assert grant["events"][0]["title"] == "Client registered (open)"
    refreshes = [e for e in grant["events"] if e["kind"] == "token.refreshed"]
    assert [(e["ip"], e["user_agent"]) for e in refreshes] == [(HOME, AGENT), (CAFE, AGENT)]
    assert [w["code"] for w in grant["warnings"]] == ["two_networks", "refresh_reuse"]
    assert f"{HOME} and {CAFE}" in grant["warnings"][0]["message"]
    by_client = client.get(f"/api/v1/projects/{project_a.slug}/grants?client_id={story.client_id}",
                           **bearer(OperatorToken.issue(alice, "ci")[1])).json()
    assert [g["subject"] for g in by_client["results"]] == [end_user_a.subject]


def test_an_unused_grant_is_flagged_after_ten_minutes(client, project_a, end_user_a, public_client_a):
    code = authorize(client, project_a, public_client_a, end_user_a)
    token(client, project_a, public_client_a, HOME, grant_type="authorization_code", code=code,
          code_verifier=VERIFIER, redirect_uri=LOOPBACK_REDIRECT)
    rollup.run(newest=record.minute_now())
    (soon,) = timeline.grants(project_a, subject=end_user_a.subject)
    assert soon.warnings == []  # not ten minutes yet
    (later,) = timeline.grants(project_a, subject=end_user_a.subject, now=timezone.now() + timedelta(minutes=11))
    assert [w["code"] for w in later.warnings] == ["never_used"]


def test_the_end_users_and_the_clients_pages_show_the_timeline(client, alice, project_a, end_user_a, story):
    client.force_login(alice)
    for path in (f"/projects/{project_a.slug}/users/{end_user_a.pk}", f"/projects/{project_a.slug}/clients/{story.pk}"):
        page = client.get(path).content.decode()
        kinds = [line.split('data-kind="')[1].split('"')[0] for line in page.split("<li") if 'data-kind="' in line]
        assert kinds == STORY, path
        assert 'data-warning="two_networks"' in page and 'data-warning="refresh_reuse"' in page
        assert AGENT in page


def test_another_projects_grants_are_neither_shown_nor_readable(client, alice, bob, project_a, project_b,
                                                                end_user_a, end_user_b, story):
    bobs = OperatorToken.issue(bob, "ci")[1]
    assert client.get(f"/api/v1/projects/{project_b.slug}/grants", **bearer(bobs)).json() == {"results": [],
                                                                                              "count": 0}
    refused = client.get(f"/api/v1/projects/{project_a.slug}/grants", **bearer(bobs))
    assert (refused.status_code, refused.json()["error"]) == (404, "not_found")
    client.force_login(bob)
    assert client.get(f"/projects/{project_a.slug}/users/{end_user_a.pk}").status_code == 404
    client.force_login(alice)
    assert client.get(f"/projects/{project_a.slug}/users/{end_user_b.pk}").status_code == 404  # not alpha's
    mine = client.get(f"/api/v1/projects/{project_a.slug}/grants", **bearer(OperatorToken.issue(alice, "ci")[1]))
    assert [g["subject"] for g in mine.json()["results"]] == [end_user_a.subject]
