"""Issue 20, "Operators": a project owner may require MFA of every member (`Project.require_mfa`).

A member without a verified second factor who opens such a project is sent to enrol (the Security
page and signing out stay open to them); their API tokens are refused for it; other projects are
not affected. Only an owner turns it on or off, and only with a second factor of their own.
"""

import io
import json

import pytest
from django.core.management import call_command

from dashboard.models import OperatorToken
from projects.models import AuditEvent, Project, ProjectMember
from tests.conftest import PASSWORD
from tests.mfa.support import enrol_totp

pytestmark = pytest.mark.django_db


def sign_in(client, user, totp=None):
    client.post("/login", {"email": user.email, "password": PASSWORD})
    if totp is not None:
        client.post("/login/verify", {"code": totp.now()})


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def bob_in_alpha(project_a, bob):
    """Bob: owner of bravo, admin of alpha."""
    return ProjectMember.objects.create(project=project_a, user=bob, role="admin")


def require(project) -> None:
    Project.objects.filter(pk=project.pk).update(require_mfa=True)


def test_a_member_without_a_factor_is_sent_to_enrol(client, project_a, project_b, bob_in_alpha, bob):
    require(project_a)
    sign_in(client, bob)
    for path in ("/projects/alpha", "/projects/alpha/settings", "/projects/alpha/clients"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/account/security", path
    page = client.get("/account/security")
    assert page.status_code == 200
    assert "Project ALPHA requires two-factor authentication" in page.content.decode()
    assert client.get("/projects/bravo").status_code == 200  # requiring MFA in alpha does not block bravo
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 302


def test_a_member_with_a_verified_factor_opens_it(client, project_a, bob_in_alpha, bob):
    require(project_a)
    totp = enrol_totp(bob)
    sign_in(client, bob, totp)
    assert client.get("/projects/alpha").status_code == 200


def test_a_project_without_the_requirement_opens_without_a_factor(client, project_a, bob_in_alpha, bob):
    sign_in(client, bob)
    assert client.get("/projects/alpha").status_code == 200


def test_api_tokens_of_a_member_without_a_factor_are_refused_for_that_project_only(
        client, project_a, project_b, bob_in_alpha, bob):
    require(project_a)
    token = OperatorToken.issue(bob, "ci")[1]
    response = client.get("/api/v1/projects/alpha", **bearer(token))
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert "requires two-factor authentication" in response.json()["error_description"]
    assert client.get("/api/v1/projects/bravo", **bearer(token)).status_code == 200
    enrol_totp(bob)
    assert client.get("/api/v1/projects/alpha", **bearer(token)).status_code == 200


def test_an_owner_with_a_factor_turns_it_on_and_it_is_audited(client, project_a, alice):
    totp = enrol_totp(alice)
    sign_in(client, alice, totp)
    token = OperatorToken.issue(alice, "ci")[1]
    response = client.patch("/api/v1/projects/alpha", {"require_mfa": True}, content_type="application/json",
                            **bearer(token))
    assert response.status_code == 200 and response.json()["require_mfa"] is True
    assert Project.objects.get(pk=project_a.pk).require_mfa
    event = AuditEvent.objects.get(project=project_a, kind="project.mfa_required")
    assert event.actor == "alice@example.com"
    assert AuditEvent.objects.get(project=project_a, kind="settings.changed").detail == {"changed": ["require_mfa"]}


def test_an_owner_without_a_factor_cannot_turn_it_on(client, project_a, alice):
    token = OperatorToken.issue(alice, "ci")[1]
    response = client.patch("/api/v1/projects/alpha", {"require_mfa": True}, content_type="application/json",
                            **bearer(token))
    assert response.status_code == 400
    assert "Add a second factor to your own account first" in json.dumps(response.json())
    assert not Project.objects.get(pk=project_a.pk).require_mfa


def test_an_admin_cannot_change_it_through_the_api(client, project_a, bob_in_alpha, bob):
    enrol_totp(bob)
    token = OperatorToken.issue(bob, "ci")[1]
    response = client.patch("/api/v1/projects/alpha", {"require_mfa": True}, content_type="application/json",
                            **bearer(token))
    assert response.status_code == 400
    assert "Only a project owner may change this." in json.dumps(response.json())
    assert not Project.objects.get(pk=project_a.pk).require_mfa
    assert not AuditEvent.objects.filter(kind="project.mfa_required").exists()


def settings_post(page) -> dict:
    """What the Settings page posts back unchanged (unticked boxes are absent)."""
    form = page.context["form"]
    return {name: form[name].value() for name in form.fields if form[name].value() not in (None, False, "")}


def test_an_admin_sees_it_but_cannot_change_it_in_the_dashboard(client, project_a, bob_in_alpha, bob):
    totp = enrol_totp(bob)
    sign_in(client, bob, totp)
    page = client.get("/projects/alpha/settings")
    assert page.context["form"]["require_mfa"].field.disabled and 'name="require_mfa"' in page.content.decode()
    response = client.post("/projects/alpha/settings", settings_post(page) | {"require_mfa": "on"})
    assert response.status_code == 302
    assert not Project.objects.get(pk=project_a.pk).require_mfa


def test_an_owner_turns_it_off_in_the_dashboard(client, project_a, alice):
    require(project_a)
    totp = enrol_totp(alice)
    sign_in(client, alice, totp)
    page = client.get("/projects/alpha/settings")
    assert not page.context["form"]["require_mfa"].field.disabled
    post = settings_post(page)
    post.pop("require_mfa")
    response = client.post("/projects/alpha/settings", post)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Project.objects.get(pk=project_a.pk).require_mfa
    assert AuditEvent.objects.filter(project=project_a, kind="project.mfa_not_required").exists()


def test_the_command_line_sets_it(project_a):
    out = io.StringIO()
    call_command("setproject", "alpha", "--set", "require_mfa=true", "--json", stdout=out)
    assert json.loads(out.getvalue())["require_mfa"] is True
    assert Project.objects.get(pk=project_a.pk).require_mfa
    assert AuditEvent.objects.get(project=project_a, kind="project.mfa_required").actor == "manage.py setproject"


def test_the_members_page_shows_who_has_a_second_factor(client, project_a, bob_in_alpha, alice, bob):
    enrol_totp(bob)
    client.force_login(alice)
    page = client.get("/projects/alpha/members")
    rows = {m.user.email: m.has_mfa for m in page.context["members"]}
    assert rows == {"alice@example.com": False, "bob@example.com": True}
    assert '<td data-label="Two-factor">on</td>' in page.content.decode()
