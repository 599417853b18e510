"""Rate limits across worker processes: the real server (as shipped, 2 workers, PostgreSQL + Redis) as
production runs it, driven over HTTP with a new connection per request (sync workers do not keep
connections alive, so requests land on either worker). A limit of N lets exactly N through, whoever
answers; and `RATE_LIMITS=off` turns every limit off and says so when the server starts."""

from __future__ import annotations

import base64
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urljoin

import httpx2
import pytest

from tests.servers import start_server

from .conftest import PASSWORD, REDIRECT_URI, Issuer, free_port, stop
from .user_agent import EndUser

pytestmark = pytest.mark.xdist_group("e2e")  # one issuer (tests/e2e/conftest.py)

CLIENT = {"client_name": "Claude", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}


def register(issuer_url: str) -> httpx2.Response:
    return httpx2.post(f"{issuer_url}/api/oauth/register", json=CLIENT, timeout=30)


def operator_sign_in(origin: str, email: str, password: str) -> httpx2.Response:
    """A fresh browser: the login page (CSRF cookie and token), then the form."""
    with httpx2.Client(timeout=30) as browser:
        page = browser.get(f"{origin}/login")
        token = page.text.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        return browser.post(f"{origin}/login", data={"csrfmiddlewaretoken": token, "email": email,
                                                     "password": password}, headers={"Referer": f"{origin}/login"})


def assert_throttled(response: httpx2.Response, policy: str) -> None:
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert response.headers["RateLimit"] == f'"{policy}";r=0;t={retry_after}'
    assert f'"{policy}";q=' in response.headers["RateLimit-Policy"]


def test_a_per_project_registration_limit_holds_across_workers(issuer: Issuer):
    project = issuer.create_project("rl-register", ["https://mcp.rl-register.example/mcp"])
    issuer.manage("setproject", "rl-register", "--set", "rate_limits.register:ip=7/1h")  # the CLI, as a script would
    with ThreadPoolExecutor(max_workers=6) as pool:  # both workers busy at once
        responses = list(pool.map(lambda _: register(project["issuer"]), range(20)))
    assert sorted(r.status_code for r in responses) == [201] * 7 + [429] * 13
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json() == {"error": "rate_limited", "error_description": "Too many requests; retry later."}
        assert_throttled(refused, "register:ip/1h")
        assert refused.headers["RateLimit-Policy"] == '"register:ip/1h";q=7;w=3600'


def test_operator_sign_in_is_throttled_across_workers_known_account_or_not(issuer: Issuer):
    issuer.manage("createoperator", "--email", "rl-op@example.com", "--password", PASSWORD)
    answers = {}
    for email in ("rl-op@example.com", "rl-nobody@example.com"):
        responses = [operator_sign_in(issuer.url, email, "wrong password") for _ in range(12)]
        answers[email] = [r.status_code for r in responses]
        assert_throttled(responses[-1], "operator-signin:account/15m")
        assert "Too many attempts" in responses[-1].text
    assert answers["rl-op@example.com"] == answers["rl-nobody@example.com"] == [400] * 10 + [429] * 2
    assert operator_sign_in(issuer.url, "rl-op@example.com", PASSWORD).status_code == 429  # even the right one


def test_end_user_sign_in_is_throttled_across_workers_known_account_or_not(issuer: Issuer):
    project = issuer.create_project("rl-signin", ["https://mcp.rl-signin.example/mcp"])
    issuer.create_end_user("rl-signin", "eve@rl-signin.example")
    client_id = register(project["issuer"]).json()["client_id"]
    answers = {}
    for email in ("eve@rl-signin.example", "nobody@rl-signin.example"):
        person = EndUser(email, "wrong password")
        try:
            page = sign_in_page(person, project["issuer"], client_id)
            statuses = []
            for _ in range(7):  # each a new connection: either worker answers
                page = person._submit(page)
                statuses.append(page.status_code)
            answers[email] = statuses
            assert_throttled(page, "signin:account/15m")
            assert "Too many attempts" in page.text
        finally:
            person.close()
    assert answers["eve@rl-signin.example"] == answers["nobody@rl-signin.example"] == [400] * 5 + [429] * 2


def sign_in_page(person: EndUser, issuer_url: str, client_id: str) -> httpx2.Response:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                       "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"})
    response = person.http.get(f"{issuer_url}/oauth/authorize?{query}")
    while response.is_redirect:
        response = person.http.get(urljoin(str(response.request.url), response.headers["location"]))
    assert response.status_code == 200 and "Sign in" in response.text
    return response


@pytest.fixture
def unlimited_server(issuer: Issuer):
    """A second server on the same database, started with RATE_LIMITS=off (as a load test would)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**issuer.env, "RATE_LIMITS": "off", "PUBLIC_URL": url}
    log = issuer.workdir / "unlimited.log"
    process = start_server(env, port, log)
    try:
        yield url, log
    finally:
        stop(process)


def test_rate_limits_off_turns_every_limit_off_and_warns_at_start(issuer: Issuer, unlimited_server):
    url, log = unlimited_server
    assert "mcpauth.W010" in log.read_text()  # the start-up warning, from each worker
    issuer.create_project("rl-off", ["https://mcp.rl-off.example/mcp"])
    issuer.manage("setproject", "rl-off", "--set", "rate_limits.register:ip=2/1h")
    assert [register(f"{url}/p/rl-off").status_code for _ in range(5)] == [201] * 5
    issuer.manage("createoperator", "--email", "rl-off-op@example.com", "--password", PASSWORD)
    assert [operator_sign_in(url, "rl-off-op@example.com", "wrong").status_code for _ in range(12)] == [400] * 12
    assert operator_sign_in(url, "rl-off-op@example.com", PASSWORD).status_code == 302
    # The server with limits on shares the database and Redis: nothing was counted while they were off.
    assert [register(f"{issuer.url}/p/rl-off").status_code for _ in range(3)] == [201, 201, 429]
