"""Sign-in with a generic OpenID Connect provider we did not write: node oidc-provider (npm,
unmodified, its development interactions) on 127.0.0.1 over HTTPS, driven end to end in Chromium:
an MCP-style client → our authorize → `Continue with Acme SSO` → the upstream's own sign-in and
consent pages → our consent → code → token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from identity.models import IdentityProvider, UpstreamIdentity
from oauth.models import Grant
from projects.models import User
from tests.authz import VERIFIER
from tests.browser import screenshot
from tests.e2e.test_browser_authorize import authorize, back_at_client, client_app  # noqa: F401 - fixture
from tests.oauth.clients.test_cimd import _cert_pair
from tests.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

JS = Path(__file__).resolve().parent / "idp_js"
SHOTS = os.environ.get("IDENTITY_SHOTS", "")  # a folder to copy the screenshots to (the closing note's)


@pytest.fixture
def upstream(tmp_path, settings, live_server):
    """oidc-provider, with our project's callback registered as its client's redirect URI."""
    if shutil.which("node") is None or not (JS / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("Node 20 and `npm ci --prefix tests/e2e/idp_js` are needed (make test does both)")
    settings.PUBLIC_URL = live_server.url
    ca, cert, key = _cert_pair(tmp_path)
    settings.OUTBOUND_CA_BUNDLE, settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = str(ca), True  # on 127.0.0.1
    process = subprocess.Popen(
        ["node", str(JS / "idp.js"), "--port", str(free_port()), "--cert", str(cert), "--key", str(key),
         "--client-id", "mcpauth-alpha", "--client-secret", "upstream-secret",
         "--redirect-uri", f"{live_server.url}/p/alpha/oauth/upstream/callback"],
        cwd=JS, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    line = process.stdout.readline()
    watchdog.cancel()
    if not line:
        pytest.fail(f"oidc-provider did not start:\n{process.stderr.read()}")
    yield json.loads(line)["ready"]
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def chromium(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800}, ignore_https_errors=True)  # the test CA
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    path = screenshot(page, name)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SHOTS) / path.name)


def redeem(live_server, client, redirect_uri: str, code: str) -> dict:
    body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                      "client_id": client.client_id, "code_verifier": VERIFIER}).encode()
    request = urllib.request.Request(f"{live_server.url}/p/alpha/oauth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def test_a_person_signs_in_with_an_openid_provider_and_the_client_gets_tokens(
        live_server, chromium, upstream, client_app, project_a, public_client_a):  # noqa: F811 - fixture
    provider = IdentityProvider(project=project_a, kind="oidc", name="Acme SSO", client_id="mcpauth-alpha",
                                issuer=upstream)
    provider.client_secret = "upstream-secret"
    provider.save()
    page = chromium
    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="upstream-state",
                        prompt="login", max_age="0"))
    page.get_by_role("link", name="Continue with Acme SSO").wait_for()
    shot(page, "identity-1-sign-in-with-providers")
    page.get_by_role("link", name="Continue with Acme SSO").click()

    page.locator("input[name=login]").fill("ada@example.com")  # oidc-provider's own sign-in page
    page.locator("input[name=password]").fill("any password")
    shot(page, "identity-2-upstream-sign-in")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # its consent page

    page.get_by_role("button", name="Allow").wait_for()  # ours
    shot(page, "identity-3-back-at-consent")
    page.get_by_role("button", name="Allow").click()
    params = back_at_client(page, client_app)
    assert params["state"] == "upstream-state" and params["iss"] == project_a.issuer

    tokens = redeem(live_server, public_client_a, f"{client_app.url}/callback", params["code"])
    assert tokens["token_type"] == "Bearer" and tokens["access_token"].startswith("mcpat_")
    user = User.objects.get(project=project_a)
    assert user.email == "ada@example.com" and user.email_verified_at is not None
    assert UpstreamIdentity.objects.get(provider=provider).subject == "ada@example.com"
    assert Grant.objects.get(application=public_client_a).user == user


def test_cancelling_at_the_upstream_returns_to_our_sign_in_page(live_server, chromium, upstream, client_app,  # noqa: F811
                                                                project_a, public_client_a):
    provider = IdentityProvider(project=project_a, kind="oidc", name="Acme SSO", client_id="mcpauth-alpha",
                                issuer=upstream)
    provider.client_secret = "upstream-secret"
    provider.save()
    page = chromium
    page.goto(authorize(live_server, project_a, public_client_a, client_app))
    page.get_by_role("link", name="Continue with Acme SSO").click()
    page.locator("input[name=login]").wait_for()
    page.get_by_role("link", name="Cancel").click()  # oidc-provider's abort: access_denied
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text() == "You cancelled signing in with Acme SSO. Choose a way to sign in."
    assert page.get_by_role("link", name="Continue with Acme SSO").is_visible()
    assert not User.objects.filter(project=project_a).exists()


def test_an_operator_adds_the_provider_and_tests_the_sign_in(live_server, chromium, upstream, project_a):
    from tests.e2e.test_browser_dashboard import sign_in

    page = chromium
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(f"{live_server.url}/projects/alpha/identity-providers")
    assert page.locator("#callback-url").inner_text() == f"{live_server.url}/p/alpha/oauth/upstream/callback"
    page.get_by_label("Kind").select_option("oidc")
    page.get_by_label("Name").fill("Acme SSO")
    page.get_by_label("Client ID").fill("mcpauth-alpha")
    page.get_by_label("Client secret").fill("upstream-secret")
    page.get_by_label("Issuer or tenant").fill(upstream)
    page.get_by_role("button", name="Add").click()
    page.get_by_role("button", name="Test sign-in with Acme SSO").wait_for()
    shot(page, "identity-4-dashboard-providers")
    page.get_by_role("button", name="Test sign-in with Acme SSO").click()

    page.locator("input[name=login]").fill("operator-check@example.com")  # oidc-provider's sign-in page
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    page.locator("#test-result").wait_for()
    shot(page, "identity-5-test-sign-in")
    result = page.locator("#test-result").inner_text()
    assert "It works" in result and "operator-check@example.com" in result
    assert not User.objects.filter(project=project_a).exists()
