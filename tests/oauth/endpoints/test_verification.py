"""Email verification of hosted end users (issue 20, "Hosted accounts that are real"): a link by
email, single use, expiring; `require_verified_email` stops an unverified account until it is used."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from oauth.endpoints import verification
from oauth.models import AuthorizationRequest, Grant
from projects.models import AccountToken, Project, User
from tests.authz import authorize_path, query_of, sign_in_as
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NEW = "new@example.com"


def open_signup(project, **policy):
    Project.objects.filter(pk=project.pk).update(signup_enabled=True, **policy)


def sign_up(client, project, app, email=NEW):
    """Authorize signed out, then create an account on the hosted sign-up page; the response."""
    signin_path = client.get(authorize_path(project, app))["Location"]
    return client.post(signin_path.replace("signin", "signup"), {"email": email, "password": PASSWORD})


def confirm(client, link: str):
    assert client.get(link).status_code == 200  # the page with the button: opening it spends nothing
    return client.post(link)


def test_it_emails_a_verification_link_through_smtp_at_sign_up(client, project_a, public_client_a, inbox):
    open_signup(project_a)
    sign_up(client, project_a, public_client_a)
    [message] = inbox.to(NEW)
    assert message["Subject"] == "Confirm your email address for Project ALPHA"
    assert message["From"] == "Project ALPHA <noreply@mcpauth.test>"
    link = inbox.last_link(NEW)
    assert link.startswith("/p/alpha/oauth/verify-email?token=mcpml_")
    value = query_of(link)["token"]
    row = AccountToken.objects.get(user__email=NEW)
    assert value not in row.digest and len(row.digest) == 64  # a keyed digest, never the value
    assert User.objects.get(email=NEW).email_verified_at is None


def test_it_verifies_the_email_when_the_link_is_confirmed(client, project_a, public_client_a, inbox):
    open_signup(project_a)
    sign_up(client, project_a, public_client_a)
    response = confirm(client, inbox.last_link(NEW))
    assert response.status_code == 302  # back into the authorization (consent)
    assert User.objects.get(email=NEW).email_verified_at is not None
    assert AccountToken.objects.get().used_at is not None


def test_a_verification_link_works_once(client, project_a, public_client_a, inbox):
    open_signup(project_a)
    sign_up(client, project_a, public_client_a)
    link = inbox.last_link(NEW)
    confirm(client, link)
    User.objects.filter(email=NEW).update(email_verified_at=None)
    again = client.post(link)
    assert again.status_code == 400
    assert verification.EXPIRED in again.content.decode()
    assert User.objects.get(email=NEW).email_verified_at is None


def test_an_expired_verification_link_is_refused(client, project_a, public_client_a, inbox):
    open_signup(project_a)
    sign_up(client, project_a, public_client_a)
    AccountToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    link = inbox.last_link(NEW)
    assert client.get(link).status_code == 400
    assert client.post(link).status_code == 400
    assert User.objects.get(email=NEW).email_verified_at is None


def test_a_link_of_project_a_does_nothing_at_project_b(client, project_a, public_client_a, project_b, inbox):
    open_signup(project_a)
    sign_up(client, project_a, public_client_a)
    link = inbox.last_link(NEW).replace("/p/alpha/", "/p/bravo/")
    assert client.get(link).status_code == 400
    assert client.post(link).status_code == 400
    assert User.objects.get(email=NEW).email_verified_at is None
    assert AccountToken.objects.get().used_at is None


def test_an_unverified_account_cannot_finish_an_authorization_when_required(client, project_a, public_client_a, inbox):
    open_signup(project_a, require_verified_email=True)
    response = sign_up(client, project_a, public_client_a)
    pending = AuthorizationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/p/alpha/oauth/check-email?request={pending.pk}"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "Check your email" in page.content.decode() and NEW in page.content.decode()
    # Consent, and a fresh authorization, lead back to the same page; no code is issued.
    assert client.get(f"/p/alpha/oauth/consent?request={pending.pk}")["Location"].endswith(
        f"/oauth/check-email?request={pending.pk}")
    assert "/oauth/check-email?request=" in client.get(authorize_path(project_a, public_client_a))["Location"]
    assert client.post(f"/p/alpha/oauth/consent?request={pending.pk}", {"decision": "allow"}).status_code == 302
    assert not Grant.objects.exists()
    assert AuthorizationRequest.objects.get(pk=pending.pk).status == AuthorizationRequest.Status.PENDING


def test_prompt_none_with_an_unverified_account_is_login_required(client, project_a, public_client_a, inbox):
    Project.objects.filter(pk=project_a.pk).update(require_verified_email=True)
    user = User.objects.create_end_user(project_a, NEW, PASSWORD)
    sign_in_as(client, user)
    response = client.get(authorize_path(project_a, public_client_a, prompt="none"))
    assert query_of(response["Location"])["error"] == "login_required"
    assert not Grant.objects.exists()


def test_the_link_continues_the_kept_authorization(client, project_a, public_client_a, inbox):
    open_signup(project_a, require_verified_email=True)
    sign_up(client, project_a, public_client_a)
    pending = AuthorizationRequest.objects.get()
    assert pending.expires_at > timezone.now() + timedelta(minutes=10)  # kept while the mail travels
    response = confirm(client, inbox.last_link(NEW))
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    allowed = client.post(response["Location"], {"decision": "allow"})
    assert set(query_of(allowed["Location"])) == {"code", "state", "iss"}
    assert Grant.objects.get().user.email == NEW


def test_the_link_in_another_browser_verifies_without_signing_in(client, project_a, public_client_a, inbox):
    open_signup(project_a, require_verified_email=True)
    check = sign_up(client, project_a, public_client_a)["Location"]
    other = Client()
    response = confirm(other, inbox.last_link(NEW))
    assert response.status_code == 200 and "Email confirmed" in response.content.decode()
    assert f"enduser:{project_a.pk}" not in other.session
    continued = client.get(check)  # the first browser's Continue button
    assert continued["Location"].startswith("/p/alpha/oauth/consent?request=")


def test_resending_the_link_is_throttled_with_429_and_retry_after(client, project_a, public_client_a, inbox):
    open_signup(project_a, require_verified_email=True)
    check = sign_up(client, project_a, public_client_a)["Location"]
    limit = verification.ratelimit.LIMITS["verify:account"].default[0].limit
    for _ in range(limit):
        assert client.post(check).status_code == 200
    response = client.post(check)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 901
    assert verification.THROTTLED in response.content.decode()
    assert len(inbox.to(NEW)) == 1 + limit


def test_accounts_without_the_requirement_go_on_unverified(client, project_a, public_client_a, inbox):
    open_signup(project_a)
    response = sign_up(client, project_a, public_client_a)
    assert response["Location"].startswith("/p/alpha/oauth/consent?request=")
