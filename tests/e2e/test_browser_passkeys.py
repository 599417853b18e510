"""Issue 20, "Operators": passkeys end to end in real Chromium, with a CDP virtual authenticator.

An operator adds a passkey on the Security page (navigator.credentials.create, checked by
py_webauthn), signs out, and signs in with their password and the passkey
(navigator.credentials.get). The relying party is PUBLIC_URL's host: `localhost` here (an IP
address is no valid RP ID). A captured answer cannot be replayed (its challenge was spent), an
answer whose signature counter did not grow is refused, and so is one made for another origin.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.test import Client

from mfa import factors
from mfa.models import Passkey
from projects.models import AuditEvent
from tests.browser import screenshot
from tests.conftest import PASSWORD
from tests.mfa.support import enrol_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Django refuses sync ORM calls from inside an event loop; Playwright's sync API runs one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SHOTS = Path(os.environ.get("MFA_SHOTS", "")) if os.environ.get("MFA_SHOTS") else None


def shot(page, name: str) -> None:
    path = screenshot(page, name)
    if SHOTS is not None:  # copies for a closing note: MFA_SHOTS=/some/folder
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)


def virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})


def password_step(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def localhost(live_server, settings):
    assert live_server.url.startswith("http://localhost:")  # a secure context with a valid RP ID
    settings.PUBLIC_URL = live_server.url
    return live_server.url


def test_an_operator_adds_a_passkey_then_signs_in_with_password_and_passkey(localhost, page, alice):
    virtual_authenticator(page)
    page.on("dialog", lambda dialog: dialog.accept())
    password_step(page, localhost)
    page.get_by_role("heading", name="Projects", exact=True).wait_for()

    page.goto(f"{localhost}/account/security")
    page.get_by_label("Passkey name").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.locator(".flash").get_by_text("Passkey “Work laptop” added.").wait_for()
    passkey = Passkey.objects.get(user=alice)
    assert passkey.name == "Work laptop" and passkey.confirmed and passkey.public_key
    assert AuditEvent.objects.get(kind="operator.mfa_added").detail == {"factor": "passkey", "name": "Work laptop"}

    enrol_totp(alice)  # for the picture: both kinds of factor and the recovery codes
    factors.new_recovery_codes(alice)
    page.reload()
    page.get_by_role("cell", name="Work laptop", exact=True).wait_for()
    shot(page, "mfa-security-page")

    page.get_by_role("button", name="Sign out").click()
    password_step(page, localhost)
    page.get_by_role("heading", name="Two-factor authentication").wait_for()
    assert page.url == f"{localhost}/login/verify"
    shot(page, "mfa-sign-in-prompt")

    answers = []
    page.on("request", lambda r: answers.append(r.post_data) if r.url.endswith("/login/verify/passkey") else None)
    page.get_by_role("button", name="Use a passkey").click()
    page.get_by_role("heading", name="Projects", exact=True).wait_for()
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None

    # The same answer again, in a new sign-in: its challenge was spent, the new one differs.
    replay = Client()
    replay.post("/login", {"email": "alice@example.com", "password": PASSWORD})
    assert replay.post("/login/verify/passkey/options").status_code == 200
    response = replay.post("/login/verify/passkey", answers[0], content_type="application/json")
    assert response.status_code == 400 and response.json() == {"error": "That passkey was not accepted. Try again."}
    assert "_auth_user_id" not in replay.session

    # A signature counter that did not grow: a cloned authenticator (WebAuthn §6.1.1) is refused.
    passkey.refresh_from_db()
    Passkey.objects.filter(pk=passkey.pk).update(sign_count=passkey.sign_count + 1000)
    page.get_by_role("button", name="Sign out").click()
    password_step(page, localhost)
    page.get_by_role("button", name="Use a passkey").click()
    page.get_by_text("That passkey was not accepted. Try again.").wait_for()
    assert page.url == f"{localhost}/login/verify"


def test_a_passkey_answer_for_another_origin_is_refused(localhost, page, alice, settings):
    virtual_authenticator(page)
    password_step(page, localhost)
    page.get_by_role("heading", name="Projects", exact=True).wait_for()
    page.goto(f"{localhost}/account/security")
    settings.PUBLIC_URL = localhost.replace("http://", "https://")  # the origin the server expects differs
    page.get_by_label("Passkey name").fill("Phished")
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_text("The passkey could not be added. Try again.").wait_for()
    assert not Passkey.objects.filter(user=alice).exists()
    assert not AuditEvent.objects.filter(kind="operator.mfa_added").exists()
