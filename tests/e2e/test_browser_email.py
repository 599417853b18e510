"""Sign-up with email verification in real Chromium (issue 20): sign up → "Check your email" →
the link from a real SMTP server → confirm → consent → the client gets a code."""

import os

import pytest

from oauth.models import Grant
from projects.models import Project, User
from tests.browser import screenshot
from tests.conftest import PASSWORD
from tests.e2e.test_browser_authorize import ClientApp, authorize, back_at_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def client_app():
    """The MCP client's loopback callback (a local web app in a thread)."""
    app = ClientApp()
    app.thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()


def test_sign_up_verify_by_email_consent_and_code(live_server, page, settings, client_app, project_a,
                                                  public_client_a, inbox):
    settings.PUBLIC_URL = live_server.url  # the link in the email points at this server
    Project.objects.filter(pk=project_a.pk).update(signup_enabled=True, require_verified_email=True)
    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="mail-state"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill("new@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    screenshot(page, "check-your-email")
    assert not Grant.objects.exists()

    page.goto(live_server.url + inbox.last_link("new@example.com"))
    screenshot(page, "confirm-email")
    page.get_by_role("button", name="Confirm my email address").click()
    page.get_by_role("button", name="Allow").click()
    params = back_at_client(page, client_app)

    assert set(params) == {"code", "state", "iss"} and params["state"] == "mail-state"
    user = User.objects.get(project=project_a, email="new@example.com")
    assert user.email_verified_at is not None
    assert Grant.objects.get(application=public_client_a).user == user


def test_forgot_password_by_email_then_sign_in_with_the_new_one(live_server, page, settings, client_app, project_a,
                                                                public_client_a, end_user_a, inbox):
    settings.PUBLIC_URL = live_server.url
    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="reset-state"))
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_role("button", name="Send the link").click()
    page.get_by_text("we sent it a link").wait_for()
    screenshot(page, "forgot-password-sent")

    page.goto(live_server.url + inbox.last_link("eve@example.com"))
    page.get_by_label("New password").fill("a brand new passphrase")
    screenshot(page, "choose-new-password")
    page.get_by_role("button", name="Set the new password").click()
    page.get_by_role("heading", name="Password changed").wait_for()

    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="reset-state"))
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_label("Password").fill("a brand new passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    assert back_at_client(page, client_app)["state"] == "reset-state"
