"""Password reset by email for hosted end users (issue 20): single-use, expiring link; the same
answer whether or not the address has an account; throttled per address and per client address."""

from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.test import Client
from django.utils import timezone

from infra import ratelimit
from oauth.endpoints import password_reset
from oauth.models import AccessToken
from projects.models import AccountToken
from tests.authz import authorize_path, sign_in_as
from tests.conftest import PASSWORD
from tests.token_support import make_code, redeem

pytestmark = pytest.mark.django_db
FORGOT = "/p/alpha/oauth/forgot-password"
NEW_PASSWORD = "a brand new passphrase"


def ask(client, email, path=FORGOT):
    return client.post(path, {"email": email})


def reset(client, link, password=NEW_PASSWORD):
    assert client.get(link).status_code == 200
    return client.post(link, {"password": password})


def test_the_sign_in_page_links_to_forgot_password(client, project_a, public_client_a):
    signin = client.get(authorize_path(project_a, public_client_a))["Location"]
    html = client.get(signin).content.decode()
    assert f'href="{signin.replace("signin", "forgot-password")}">Forgot password?</a>' in html
    back = client.get(signin.replace("signin", "forgot-password")).content.decode()
    assert f'href="{signin}">Back to sign in</a>' in back


def test_it_emails_a_link_that_sets_a_new_password(client, project_a, end_user_a, inbox):
    assert ask(client, "Eve@Example.com").status_code == 200
    [message] = inbox.to("eve@example.com")
    assert message["Subject"] == "Reset your Project ALPHA password"
    link = inbox.last_link("eve@example.com")
    assert link.startswith("/p/alpha/oauth/reset-password?token=mcpml_")
    response = reset(client, link)
    assert response.status_code == 200 and "Password changed" in response.content.decode()
    end_user_a.refresh_from_db()
    assert end_user_a.check_password(NEW_PASSWORD) and not end_user_a.check_password(PASSWORD)
    assert end_user_a.email_verified_at is not None  # the link reached them at that address


def test_a_reset_link_works_once(client, project_a, end_user_a, inbox):
    ask(client, "eve@example.com")
    link = inbox.last_link("eve@example.com")
    reset(client, link)
    again = client.post(link, {"password": "yet another passphrase"})
    assert again.status_code == 400
    assert password_reset.EXPIRED in again.content.decode()
    end_user_a.refresh_from_db()
    assert end_user_a.check_password(NEW_PASSWORD)


def test_a_new_link_spends_none_but_using_one_spends_all(client, project_a, end_user_a, inbox):
    ask(client, "eve@example.com")
    first = inbox.last_link("eve@example.com")
    ask(client, "eve@example.com")
    reset(client, inbox.last_link("eve@example.com"))
    assert client.get(first).status_code == 400
    assert AccountToken.objects.filter(used_at__isnull=True).count() == 0


def test_an_expired_reset_link_is_refused(client, project_a, end_user_a, inbox):
    ask(client, "eve@example.com")
    AccountToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    link = inbox.last_link("eve@example.com")
    assert client.get(link).status_code == 400
    assert client.post(link, {"password": NEW_PASSWORD}).status_code == 400
    end_user_a.refresh_from_db()
    assert end_user_a.check_password(PASSWORD)


def test_a_weak_password_is_refused_and_keeps_the_link(client, project_a, end_user_a, inbox):
    ask(client, "eve@example.com")
    link = inbox.last_link("eve@example.com")
    response = client.post(link, {"password": "password"})
    assert response.status_code == 400 and "too common" in response.content.decode()
    assert reset(client, link).status_code == 200


def test_the_answer_is_identical_for_an_unknown_email(project_a, end_user_a, inbox):
    ran = []

    def count(sender=None, **kwargs):
        ran.append(sender.name)

    task_prerun.connect(count)
    try:
        known = ask(Client(), "eve@example.com")
        unknown = ask(Client(), "nobody@example.com")
    finally:
        task_prerun.disconnect(count)
    assert known.status_code == unknown.status_code == 200
    assert known.content.replace(b"eve@example.com", b"X") == unknown.content.replace(b"nobody@example.com", b"X")
    # The same work on the request for both: the task is queued either way; only the worker finds out.
    assert ran == ["projects.tasks.send_password_reset"] * 2
    assert len(inbox.to("eve@example.com")) == 1 and inbox.to("nobody@example.com") == []


def test_an_account_of_another_project_gets_nothing(client, project_a, end_user_b, inbox):
    ask(client, "eve@example.com")  # eve is an end user of bravo only
    assert inbox.messages == []


def test_a_link_of_project_a_does_nothing_at_project_b(client, project_a, end_user_a, project_b, inbox):
    ask(client, "eve@example.com")
    link = inbox.last_link("eve@example.com").replace("/p/alpha/", "/p/bravo/")
    assert client.get(link).status_code == 400
    assert client.post(link, {"password": NEW_PASSWORD}).status_code == 400
    end_user_a.refresh_from_db()
    assert end_user_a.check_password(PASSWORD)
    assert AccountToken.objects.get().used_at is None


def test_an_operator_gets_no_link_at_an_issuer(client, project_a, alice, inbox):
    ask(client, "alice@example.com")
    assert inbox.messages == []


def test_requests_are_throttled_per_address_with_429_and_retry_after(client, project_a, end_user_a, inbox):
    limit = ratelimit.LIMITS["reset:account"].default[0].limit
    for _ in range(limit):
        assert ask(client, "eve@example.com").status_code == 200
    response = ask(client, "eve@example.com")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 901
    assert response["RateLimit"].startswith('"reset:account/15m";r=0;')
    assert password_reset.THROTTLED in response.content.decode()
    assert len(inbox.to("eve@example.com")) == limit


def test_requests_are_throttled_per_client_address(client, project_a, inbox):
    limit = ratelimit.LIMITS["reset:ip"].default[0].limit
    for n in range(limit):
        assert ask(client, f"someone{n}@example.com").status_code == 200
    response = ask(client, "someone-else@example.com")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response["RateLimit"].startswith('"reset:ip/15m";r=0;')


def test_a_reset_ends_sessions_and_revokes_grants(client, project_a, public_client_a, end_user_a, inbox):
    other_browser = Client()
    sign_in_as(other_browser, end_user_a)
    code, verifier = make_code(public_client_a, end_user_a)
    assert redeem(Client(), public_client_a, code, verifier).status_code == 200
    ask(client, "eve@example.com")
    reset(client, inbox.last_link("eve@example.com"))
    assert not AccessToken.objects.filter(user=end_user_a).exists()
    # The other browser is signed out: authorizing there leads to the sign-in page again.
    assert "/oauth/signin?request=" in other_browser.get(authorize_path(project_a, public_client_a))["Location"]


def test_handoff_projects_have_no_reset_page(client, project_a):
    project_a.login_mode = "handoff"
    project_a.login_url = "https://app.example/login"
    project_a.save()
    assert client.get(FORGOT).status_code == 404

