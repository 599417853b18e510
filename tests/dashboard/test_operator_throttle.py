"""Operator password checks are throttled per account and per address, with the same answer whether
or not the account exists (API.md "Errors"): dashboard sign-in, the account page's password change,
and sign-up per address. A throttled page says so, with 429, Retry-After and the RateLimit fields."""

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from infra import ratelimit
from projects.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ACCOUNT_LIMIT = ratelimit.LIMITS["operator-signin:account"].default[0].limit  # 10 per 15 minutes
IP_LIMIT = ratelimit.LIMITS["operator-signin:ip"].default[0].limit  # 30 per 15 minutes
SIGNUP_LIMIT = ratelimit.LIMITS["operator-signup:ip"].default[0].limit  # 10 an hour


def sign_in(client, email, password, ip="203.0.113.7"):
    return client.post("/login", {"email": email, "password": password}, REMOTE_ADDR=ip)


def test_it_throttles_wrong_passwords_per_account_even_the_right_one_then(client, alice):
    statuses = [sign_in(client, "alice@example.com", "wrong password", ip=f"198.51.100.{n}").status_code
                for n in range(ACCOUNT_LIMIT + 15)]
    assert statuses == [400] * ACCOUNT_LIMIT + [429] * 15  # the 25 wrong passwords in a row
    response = sign_in(client, "alice@example.com", PASSWORD, ip="192.0.2.1")
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many attempts. Wait a few minutes and try again." in html
    assert '<label for="email">Email</label>' in html  # still the sign-in page
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 901
    assert response["RateLimit-Policy"] == '"operator-signin:account/15m";q=10;w=900'
    assert response["RateLimit"] == f'"operator-signin:account/15m";r=0;t={retry_after}'
    assert SESSION_KEY not in client.session


def test_an_unknown_account_gets_the_same_answers(alice):
    answers = {}
    for email in ("alice@example.com", "nobody@example.com"):
        browser = Client()
        statuses = [sign_in(browser, email, "wrong password", ip=f"198.51.100.{n}").status_code
                    for n in range(ACCOUNT_LIMIT + 1)]
        last = sign_in(browser, email, "wrong password", ip="192.0.2.9")
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", last.content.decode()).replace(email, "E")
        answers[email] = statuses, last.status_code, last["RateLimit-Policy"], page
    assert answers["alice@example.com"] == answers["nobody@example.com"]


def test_it_throttles_wrong_passwords_per_address_across_accounts(client, alice):
    for n in range(IP_LIMIT):
        assert sign_in(client, f"guess{n}@example.com", "wrong password").status_code == 400
    response = sign_in(client, "alice@example.com", PASSWORD)
    assert response.status_code == 429
    assert response["RateLimit"].startswith('"operator-signin:ip/15m";r=0;t=')
    assert sign_in(Client(), "alice@example.com", PASSWORD, ip="192.0.2.1").status_code == 302  # another address


def test_a_right_password_is_not_counted(client, alice):
    for _ in range(ACCOUNT_LIMIT + 2):
        assert sign_in(Client(), "alice@example.com", PASSWORD).status_code == 302
    assert sign_in(client, "alice@example.com", "wrong password").status_code == 400


def test_rate_limits_off_never_throttles_operators(client, alice, settings):
    settings.RATE_LIMITS_ENABLED = False
    for _ in range(ACCOUNT_LIMIT + 5):
        assert sign_in(client, "alice@example.com", "wrong password").status_code == 400
    assert sign_in(client, "alice@example.com", PASSWORD).status_code == 302


def test_the_password_change_shares_the_accounts_limit(client, alice):
    client.force_login(alice)
    for _ in range(ACCOUNT_LIMIT):
        response = client.post("/account", {"action": "password", "old_password": "nope",
                                            "new_password1": "a new long password", "new_password2": "a new long password"})
        assert response.status_code == 400
    response = client.post("/account", {"action": "password", "old_password": PASSWORD,
                                        "new_password1": "a new long password", "new_password2": "a new long password"})
    assert response.status_code == 429 and "Retry-After" in response and "RateLimit-Policy" in response
    assert "Too many attempts" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert sign_in(Client(), "alice@example.com", PASSWORD).status_code == 429  # the same account budget


def test_operator_sign_up_is_limited_per_address(client):
    for n in range(SIGNUP_LIMIT):
        assert client.post("/signup", {"email": f"op{n}@example.com", "password": "short"}).status_code == 400
    response = client.post("/signup", {"email": "last@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert response["RateLimit-Policy"] == '"operator-signup:ip/1h";q=10;w=3600'
    assert "Too many attempts" in response.content.decode()
    assert not User.objects.filter(email="last@example.com").exists()
