"""API.md "Authorization" walked in real Chromium: sign-in, consent, remembered consent, Deny, handoff."""

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from oauth.models import Consent, Grant
from projects.models import User
from tests.authz import authorize_path, query_of
from tests.browser import screenshot
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Django refuses sync ORM calls from inside an event loop; Playwright's sync API runs one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class ClientApp:
    """A tiny local web app in a thread: the MCP client's loopback callback and, when given an issuer
    and a project secret, the operator's login page of handoff mode."""

    def __init__(self) -> None:
        self.issuer = ""
        self.secret = ""
        self.described: dict = {}
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server names it so
                path = urlsplit(self.path)
                if path.path == "/login":
                    request_id = parse_qs(path.query)["authorization_request"][0]
                    self.send_response(302)
                    self.send_header("Location", app.operator_login(request_id))
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<!doctype html><title>Client</title><p>Back at the client.</p>")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def operator_login(self, request_id: str) -> str:
        """What an operator's backend does: read the request, vouch for its user, follow redirect_to."""
        base = f"{self.issuer}/api/oauth/authorization-requests/{request_id}"
        self.described = self._call("GET", base)
        return self._call("POST", base + "/complete", {"subject": "operator-user-7", "claims": {"name": "Seven"}})[
            "redirect_to"]

    def _call(self, method: str, url: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                         headers={"Authorization": f"Bearer {self.secret}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def client_app() -> Iterator[ClientApp]:
    app = ClientApp()
    app.thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()


def authorize(live_server, project, app, client_app, **params) -> str:
    return live_server.url + authorize_path(project, app, redirect_uri=f"{client_app.url}/callback", **params)


def back_at_client(page, client_app) -> dict:
    page.wait_for_url(f"{client_app.url}/callback?**")
    return query_of(page.url)


def sign_in_and_allow(page, live_server, project, app, client_app) -> dict:
    page.goto(authorize(live_server, project, app, client_app, state="first-state"))
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "end-user-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").wait_for()
    screenshot(page, "consent")
    page.get_by_role("button", name="Allow").click()
    return back_at_client(page, client_app)


def test_an_end_user_signs_in_consents_and_the_client_gets_a_code(live_server, page, client_app, project_a,
                                                                   public_client_a, end_user_a):
    params = sign_in_and_allow(page, live_server, project_a, public_client_a, client_app)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "first-state"
    assert params["iss"] == project_a.issuer
    grant = Grant.objects.get(application=public_client_a)
    assert grant.user == end_user_a and grant.resource == ["https://mcp.alpha.example/mcp"]
    assert Consent.objects.filter(user=end_user_a, client=public_client_a).exists()


def test_a_second_authorization_skips_the_remembered_consent(live_server, page, client_app, project_a,
                                                            public_client_a, end_user_a):
    first = sign_in_and_allow(page, live_server, project_a, public_client_a, client_app)
    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="second-state"))
    second = back_at_client(page, client_app)
    assert second["state"] == "second-state" and second["iss"] == project_a.issuer
    assert second["code"] != first["code"]
    assert Grant.objects.filter(application=public_client_a).count() == 2


def test_deny_sends_access_denied_back_to_the_client(live_server, page, client_app, project_a, public_client_a,
                                                     end_user_a):
    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="deny-state"))
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Deny").click()
    params = back_at_client(page, client_app)
    assert params["error"] == "access_denied"
    assert params["state"] == "deny-state" and params["iss"] == project_a.issuer
    assert "code" not in params
    assert Grant.objects.count() == 0


def test_handoff_mode_with_the_operators_own_login_app(live_server, page, client_app, settings, project_a,
                                                       public_client_a):
    settings.PUBLIC_URL = live_server.url  # the issuer (and so `redirect_to`) is this live server
    project_a.login_mode, project_a.login_url = "handoff", f"{client_app.url}/login"
    project_a.save()
    client_app.issuer, client_app.secret = project_a.issuer, project_a.registration_secret

    page.goto(authorize(live_server, project_a, public_client_a, client_app, state="handoff-state", scope="mcp:tools"))
    page.get_by_role("button", name="Allow").wait_for()
    assert page.locator("#client-name").inner_text() == "Public MCP client"
    assert page.locator("#redirect-host").inner_text() == "127.0.0.1"
    screenshot(page, "consent-after-handoff")
    page.get_by_role("button", name="Allow").click()

    params = back_at_client(page, client_app)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "handoff-state" and params["iss"] == f"{live_server.url}/p/alpha"
    assert client_app.described["client_name"] == "Public MCP client"
    assert client_app.described["scopes"] == ["mcp:tools"]
    user = User.objects.get(project=project_a, subject="operator-user-7")
    grant = Grant.objects.get(application=public_client_a)
    assert grant.user == user and grant.scope == "mcp:tools"
