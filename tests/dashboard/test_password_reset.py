"""Password reset by email for operators (issue 20, "Operators"): the dashboard's "Forgot password?"."""

import pytest
from django.test import Client

from dashboard import password_reset
from infra import ratelimit
from projects.models import AccountToken
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new passphrase"


def ask(client, email):
    return client.post("/forgot-password", {"email": email})


def test_the_sign_in_page_links_to_forgot_password(client):
    assert '<a href="/forgot-password">Forgot password?</a>' in client.get("/login").content.decode()


def test_a_link_sets_the_new_password_and_ends_every_session(client, alice, inbox):
    signed_in = Client()
    signed_in.force_login(alice)
    assert signed_in.get("/").status_code == 200
    ask(client, "Alice@Example.com")
    [message] = inbox.to("alice@example.com")
    assert message["Subject"] == "Reset your mcpauth password"
    link = inbox.last_link("alice@example.com")
    assert link.startswith("/reset-password?token=mcpml_")
    assert client.get(link).status_code == 200
    response = client.post(link, {"password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/login"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert signed_in.get("/")["Location"].startswith("/login")  # the old session is over
    assert client.post(link, {"password": "another passphrase"}).status_code == 400  # once
    assert client.post("/login", {"email": "alice@example.com", "password": NEW_PASSWORD}).status_code == 302


def test_an_expired_link_is_refused(client, alice, inbox):
    ask(client, "alice@example.com")
    AccountToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    link = inbox.last_link("alice@example.com")
    assert client.post(link, {"password": NEW_PASSWORD}).status_code == 400
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_the_answer_is_identical_for_an_unknown_email(alice, inbox):
    known, unknown = ask(Client(), "alice@example.com"), ask(Client(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    strip = [(b"alice@example.com", b"X"), (b"nobody@example.com", b"X")]
    bodies = []
    for response in (known, unknown):
        body = response.content
        for old, new in strip:
            body = body.replace(old, new)
        bodies.append(body)
    assert bodies[0] == bodies[1]
    assert len(inbox.to("alice@example.com")) == 1 and inbox.to("nobody@example.com") == []


def test_an_end_users_address_gets_no_operator_link(client, end_user_a, inbox):
    ask(client, "eve@example.com")
    assert inbox.messages == []


def test_an_operator_link_does_nothing_at_an_issuer(client, alice, project_a, inbox):
    ask(client, "alice@example.com")
    token = inbox.last_link("alice@example.com").split("?")[1]
    assert client.post(f"/p/alpha/oauth/reset-password?{token}", {"password": NEW_PASSWORD}).status_code == 400
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_requests_are_throttled_with_429_and_retry_after(client, alice, inbox):
    limit = ratelimit.LIMITS["operator-reset:account"].default[0].limit
    for _ in range(limit):
        assert ask(client, "alice@example.com").status_code == 200
    response = ask(client, "alice@example.com")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 901
    assert response["RateLimit"].startswith('"operator-reset:account/15m";r=0;')
    assert password_reset.THROTTLED in response.content.decode()
    assert len(inbox.to("alice@example.com")) == limit


def test_requests_are_throttled_per_client_address(client, inbox):
    limit = ratelimit.LIMITS["operator-reset:ip"].default[0].limit
    for n in range(limit):
        assert ask(client, f"someone{n}@example.com").status_code == 200
    response = ask(client, "someone-else@example.com")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response["RateLimit"].startswith('"operator-reset:ip/15m";r=0;')
