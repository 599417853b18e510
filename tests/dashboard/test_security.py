"""Issue 20, "Operators": the second step of signing in (TOTP, recovery codes) and the Security page.

An operator with a second factor is signed in only after it (docs/operators.md); a TOTP code and a
recovery code are each accepted once; wrong answers are throttled per account and per address
(429, Retry-After); changing one's factors needs a second factor from the last ten minutes.
"""

import re
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from dashboard.security import VERIFIED_AT
from infra import ratelimit
from mfa import factors
from projects.models import AuditEvent
from tests.conftest import PASSWORD
from tests.mfa.support import enrol_totp, generator, wrong_code

pytestmark = pytest.mark.django_db

MFA_LIMIT = ratelimit.LIMITS["operator-mfa:account"].default[0].limit  # 5 per 15 minutes


def password_step(client, email="alice@example.com", password=PASSWORD, ip="203.0.113.7", next_url=""):
    path = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(path, {"email": email, "password": password}, REMOTE_ADDR=ip)


def code_step(client, code, ip="203.0.113.7"):
    return client.post("/login/verify", {"code": code}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


def test_an_operator_without_a_factor_signs_in_with_the_password_alone(client, alice):
    response = password_step(client)
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in(client)


def test_it_asks_for_a_code_after_a_right_password_and_signs_in_only_then(client, alice):
    totp = enrol_totp(alice)
    response = password_step(client, next_url="/account")
    assert response.status_code == 302 and response["Location"] == "/login/verify"
    assert not signed_in(client)
    assert client.get("/account").status_code == 302  # nothing of the dashboard yet
    page = client.get("/login/verify")
    assert page.status_code == 200 and "Code from your authenticator app, or a recovery code" in page.content.decode()

    response = code_step(client, totp.now())
    assert response.status_code == 302 and response["Location"] == "/account"
    assert signed_in(client) and client.session[DEVICE_ID_SESSION_KEY].startswith("otp_totp.totpdevice/")
    assert client.get("/account").status_code == 200


def test_a_wrong_password_never_reaches_the_second_step(client, alice):
    enrol_totp(alice)
    assert password_step(client, password="wrong password").status_code == 400
    response = client.get("/login/verify")
    assert response.status_code == 302 and response["Location"] == "/login"


def test_a_totp_code_is_accepted_once(client, alice):
    totp = enrol_totp(alice)
    code = totp.now()
    password_step(client)
    assert code_step(client, code).status_code == 302
    client.post("/logout")

    password_step(client)
    response = code_step(client, code)  # the same code again: a replay
    assert response.status_code == 400
    assert "That code is not right, or it was used already." in response.content.decode()
    assert not signed_in(client)


def test_a_wrong_code_is_refused(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    response = code_step(client, wrong_code(totp))
    assert response.status_code == 400 and not signed_in(client)
    assert TOTPDevice.objects.get(user=alice).last_t == -1


def test_wrong_codes_are_throttled_per_account_then_even_the_right_one(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    statuses = [code_step(client, wrong_code(totp), ip=f"198.51.100.{n}").status_code for n in range(MFA_LIMIT + 2)]
    assert statuses == [400] * MFA_LIMIT + [429] * 2
    response = code_step(client, totp.now(), ip="192.0.2.1")
    assert response.status_code == 429 and not signed_in(client)
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 901
    assert response["RateLimit-Policy"] == '"operator-mfa:account/15m";q=5;w=900, "operator-mfa:account/1d";q=20;w=86400'
    assert response["RateLimit"] == f'"operator-mfa:account/15m";r=0;t={retry_after}'
    assert "Too many attempts. Wait a few minutes and try again." in response.content.decode()


def test_wrong_codes_are_throttled_per_address_across_accounts(alice, bob, carol):
    ip_limit = ratelimit.LIMITS["operator-mfa:ip"].default[0].limit
    for user in (alice, bob, carol):
        enrol_totp(user)
    browsers = {u.email: Client() for u in (alice, bob, carol)}
    for email, browser in browsers.items():
        password_step(browser, email=email)
    answers = [code_step(browsers[email], "000000").status_code
               for n in range(ip_limit) for email in [list(browsers)[n % 3]]]
    assert 429 not in answers[: ratelimit.LIMITS["operator-mfa:account"].default[0].limit]
    assert code_step(browsers["carol@example.com"], "000000").status_code == 429


def test_a_right_code_is_forgiven(client, alice):
    totp = enrol_totp(alice)
    for _ in range(MFA_LIMIT + 1):
        browser = Client()
        password_step(browser)
        assert code_step(browser, totp.now()).status_code in (302, 400)  # 400 only for a code spent this step
        TOTPDevice.objects.filter(user=alice).update(last_t=-1)  # let the same step's code count again
    password_step(client)
    assert code_step(client, wrong_code(totp)).status_code == 400


def test_a_recovery_code_signs_in_once_and_is_stored_hashed(client, alice):
    enrol_totp(alice)
    codes = factors.new_recovery_codes(alice)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(StaticToken.objects.filter(device__user=alice).values_list("token", flat=True))
    assert len(stored) == 10 and not stored & {c.replace("-", "") for c in codes} and not stored & set(codes)

    password_step(client)
    response = code_step(client, codes[3].upper().replace("-", " "))  # typed loosely
    assert response.status_code == 302 and signed_in(client)
    assert StaticToken.objects.filter(device__user=alice).count() == 9
    assert AuditEvent.objects.filter(kind="operator.recovery_code_used", actor="alice@example.com").exists()
    client.post("/logout")

    password_step(client)
    assert code_step(client, codes[3]).status_code == 400
    assert not signed_in(client)


def test_the_second_step_waits_five_minutes_at_most(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    session = client.session
    session["mfa.pending"]["until"] = time.time() - 1
    session.save()
    response = code_step(client, totp.now())
    assert response.status_code == 302 and response["Location"] == "/login"
    assert not signed_in(client)


def test_a_session_from_before_enrolment_is_asked_for_the_factor(client, alice):
    client.force_login(alice)
    totp = enrol_totp(alice)
    response = client.get("/account")
    assert response.status_code == 302 and response["Location"] == "/login/verify?next=/account"
    page = client.get("/login/verify?next=/account")
    assert "Confirm it is you" in page.content.decode()
    response = client.post("/login/verify?next=/account", {"code": totp.now()})
    assert response.status_code == 302 and response["Location"] == "/account"
    assert client.get("/account").status_code == 200


# --- the Security page ---------------------------------------------------------------------------

def test_enrolling_an_authenticator_app_needs_a_right_code_from_it(client, alice):
    client.force_login(alice)
    page = client.post("/account/security", {"action": "totp_start"})
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html)[1]
    totp = generator(secret)  # typed from the page into an independent implementation

    response = client.post("/account/security", {"action": "totp_confirm", "code": wrong_code(totp)})
    assert response.status_code == 400 and not TOTPDevice.objects.get(user=alice).confirmed
    response = client.post("/account/security", {"action": "totp_confirm", "code": totp.now()})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(user=alice).confirmed
    assert client.session[DEVICE_ID_SESSION_KEY].startswith("otp_totp.totpdevice/")  # this session counts as verified
    event = AuditEvent.objects.get(kind="operator.mfa_added")
    assert event.actor == "alice@example.com" and event.detail == {"factor": "totp"} and event.project is None


def test_recovery_codes_are_shown_once_and_regenerating_them_voids_the_old(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    code_step(client, totp.now())
    first = client.post("/account/security", {"action": "recovery"})
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", first.content.decode())
    assert first.status_code == 200 and len(codes) == 10
    assert not any(c in client.get("/account/security").content.decode() for c in codes)
    again = client.post("/account/security", {"action": "recovery"})
    new_codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", again.content.decode())
    assert set(new_codes).isdisjoint(codes)
    assert factors.verify_code(alice, codes[0]) is None and factors.verify_code(alice, new_codes[0]) is not None
    assert AuditEvent.objects.filter(kind="operator.recovery_codes_regenerated").count() == 2


def test_recovery_codes_need_a_factor_first(client, alice):
    client.force_login(alice)
    client.post("/account/security", {"action": "recovery"})
    assert not StaticToken.objects.filter(device__user=alice).exists()


def test_removing_a_factor_needs_a_second_factor_from_the_last_ten_minutes(client, alice):
    totp = enrol_totp(alice)
    factors.new_recovery_codes(alice)
    password_step(client)
    code_step(client, totp.now())
    session = client.session
    session[VERIFIED_AT] = time.time() - 601
    session.save()
    device = TOTPDevice.objects.get(user=alice)

    response = client.post(f"/account/security/totp/{device.pk}/remove")
    assert response.status_code == 302 and response["Location"] == "/login/verify?next=/account/security"
    assert TOTPDevice.objects.filter(pk=device.pk).exists()
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    assert client.post("/login/verify?next=/account/security", {"code": totp.now()}).status_code == 302

    response = client.post(f"/account/security/totp/{device.pk}/remove")
    assert response.status_code == 302 and response["Location"] == "/account/security"
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert not StaticToken.objects.filter(device__user=alice).exists()  # no factor left: the codes go too
    assert AuditEvent.objects.get(kind="operator.mfa_removed").detail == {"factor": "totp", "name": "Authenticator app"}
    assert password_step(Client()).status_code == 302  # the password alone again


def test_an_operator_cannot_remove_anothers_factor(client, alice, bob):
    enrol_totp(bob)
    totp = enrol_totp(alice)
    password_step(client)
    code_step(client, totp.now())
    response = client.post(f"/account/security/totp/{TOTPDevice.objects.get(user=bob).pk}/remove")
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(user=bob).exists()


def test_the_pages_are_not_framed_and_run_only_own_scripts(client, alice):
    client.force_login(alice)
    response = client.get("/account/security")
    assert response["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in response.content.decode()


# --- passkeys: what a browser cannot send by mistake (the ceremony itself: tests/e2e/test_browser_passkeys.py)

def test_passkeys_are_unavailable_when_public_url_is_an_ip_address(client, alice, settings):
    settings.PUBLIC_URL = "http://127.0.0.1:8000"  # an IP address is no valid RP ID (WebAuthn §5.1.3)
    client.force_login(alice)
    response = client.post("/account/security/passkeys/options")
    assert response.status_code == 400 and "host name" in response.json()["error"]
    assert "Add a passkey" not in client.get("/account/security").content.decode()


@pytest.mark.parametrize("body", ["not json", "[]", '{"credential": {"id": 1}}', '{"credential": "x"}',
                                  '{"credential": {"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}}'])
def test_a_malformed_passkey_answer_is_refused_without_a_500(client, alice, bob, settings, body):
    settings.PUBLIC_URL = "http://localhost:8000"
    enrol_totp(alice)
    password_step(client)
    assert client.post("/login/verify/passkey/options").status_code == 200
    response = client.post("/login/verify/passkey", body, content_type="application/json")
    assert response.status_code == 400 and response.json() == {"error": "That passkey was not accepted. Try again."}
    assert not signed_in(client)

    enrolling = Client()
    enrolling.force_login(bob)
    assert enrolling.post("/account/security/passkeys/options").status_code == 200
    response = enrolling.post("/account/security/passkeys", body, content_type="application/json")
    assert response.status_code == 400 and not factors.factors_of(bob).passkeys


def test_a_passkey_answer_without_a_pending_sign_in_is_refused(client, alice, settings):
    settings.PUBLIC_URL = "http://localhost:8000"
    assert client.post("/login/verify/passkey/options").status_code == 400
    assert client.post("/login/verify/passkey", "{}", content_type="application/json").status_code == 400


def test_passkey_answers_share_the_second_steps_throttle(client, alice, settings):
    settings.PUBLIC_URL = "http://localhost:8000"
    totp = enrol_totp(alice)
    password_step(client)
    for _ in range(MFA_LIMIT):
        assert code_step(client, wrong_code(totp)).status_code == 400
    response = client.post("/login/verify/passkey", "{}", content_type="application/json")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response.json() == {"error": "Too many attempts. Wait a few minutes and try again."}


def test_an_account_with_a_factor_answers_a_wrong_password_as_an_unknown_account_does(alice):
    enrol_totp(alice)
    pages = []
    for email in ("alice@example.com", "nobody@example.com"):
        response = password_step(Client(), email=email, password="wrong password")
        html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
        pages.append((response.status_code, html.replace(email, "E")))
    assert pages[0] == pages[1] and pages[0][0] == 400


def test_removing_an_unknown_kind_of_factor_is_a_404(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    code_step(client, totp.now())
    assert client.post("/account/security/sms/1/remove").status_code == 404


def test_an_operator_has_one_authenticator_app(client, alice):
    totp = enrol_totp(alice)
    password_step(client)
    code_step(client, totp.now())
    client.post("/account/security", {"action": "totp_start"})
    assert TOTPDevice.objects.filter(user=alice).count() == 1
