"""The end users' page shows whether each email is verified and sends verification links (issue 20)."""

import pytest
from django.utils import timezone

from infra import ratelimit
from projects.models import AuditEvent, ProjectMember, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def send(client, user, slug="alpha"):
    return client.post(f"/projects/{slug}/users/{user.pk}/send-verification")


def test_it_shows_verified_and_unverified(as_alice, project_a, end_user_a):
    verified = User.objects.create_end_user(project_a, "vera@example.com", "x" * 12)
    User.objects.filter(pk=verified.pk).update(email_verified_at=timezone.now())
    html = as_alice.get("/projects/alpha/users").content.decode()
    row_of = {u.pk: html.split(f'id="user-{u.pk}"')[1].split("</tr>")[0] for u in (end_user_a, verified)}
    assert ">unverified</span>" in row_of[end_user_a.pk] and "Send verification link" in row_of[end_user_a.pk]
    assert ">verified</span>" in row_of[verified.pk] and "Send verification link" not in row_of[verified.pk]


def test_it_sends_a_verification_link_through_smtp(as_alice, project_a, end_user_a, inbox):
    response = send(as_alice, end_user_a)
    assert response.status_code == 302
    link = inbox.last_link("eve@example.com")
    assert link.startswith("/p/alpha/oauth/verify-email?token=")
    assert AuditEvent.objects.filter(project=project_a, kind="end_user.verification_sent").count() == 1
    as_alice.post(link)  # the person opens it
    end_user_a.refresh_from_db()
    assert end_user_a.email_verified_at is not None


def test_sending_is_throttled_like_the_persons_own_resends(as_alice, end_user_a, inbox):
    limit = ratelimit.LIMITS["verify:account"].default[0].limit
    for _ in range(limit + 1):
        send(as_alice, end_user_a)
    assert len(inbox.to("eve@example.com")) == limit


def test_a_viewer_cannot_send(client, bob, project_a, end_user_a, inbox):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    client.force_login(bob)
    assert send(client, end_user_a).status_code == 403
    assert inbox.messages == []


def test_another_projects_end_user_is_not_found(as_alice, project_a, end_user_b, inbox):
    assert send(as_alice, end_user_b).status_code == 404
    assert send(as_alice, end_user_b, slug="bravo").status_code == 404
    assert inbox.messages == []


def test_the_api_lists_email_verification(client, alice, project_a, end_user_a):
    from dashboard.models import OperatorToken

    _, token = OperatorToken.issue(alice, "test")
    listed = client.get("/api/v1/projects/alpha/end-users", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert listed[0]["email"] == "eve@example.com" and listed[0]["email_verified_at"] is None
