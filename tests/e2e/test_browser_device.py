"""RFC 8628 end to end: a device polls the token endpoint in a thread of its own while the person
signs in and confirms the code in real Chromium (hosted sign-in, and the operator's handoff)."""

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from oauth.models import AccessToken, DeviceGrant
from projects.models import User
from tests.browser import screenshot
from tests.conftest import PASSWORD
from tests.device_support import DEVICE_CODE, device_client
from tests.e2e.test_browser_authorize import client_app  # noqa: F401 - the operator's login app fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def post(url: str, data: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Device:
    """A CLI as RFC 8628 §3.4 describes it: asks for codes, then polls until it has an answer."""

    def __init__(self, issuer: str, client_id: str):
        self.issuer, self.client_id = issuer, client_id
        self.errors: list[str] = []
        self.outcome: dict = {}
        self.stop = threading.Event()

    def start(self) -> dict:
        status, body = post(f"{self.issuer}/oauth/device_authorization", {"client_id": self.client_id})
        assert status == 200, body
        self.codes = body
        self.thread = threading.Thread(target=self.poll, args=(body["device_code"], body["interval"]), daemon=True)
        self.thread.start()
        return body

    def poll(self, device_code: str, interval: int) -> None:
        while not self.stop.wait(interval):
            status, body = post(f"{self.issuer}/oauth/token", {"grant_type": DEVICE_CODE, "device_code": device_code,
                                                                "client_id": self.client_id})
            if status == 200 or body.get("error") not in ("authorization_pending", "slow_down"):
                self.outcome = body
                return
            self.errors.append(body["error"])
            interval += 5 if body["error"] == "slow_down" else 0

    def result(self) -> dict:
        self.thread.join(timeout=120)
        self.stop.set()
        return self.outcome


@pytest.fixture
def issuer(live_server, settings):
    settings.PUBLIC_URL = live_server.url  # verification_uri and the issuer are this live server
    return f"{live_server.url}/p/alpha"


@pytest.fixture
def device(issuer, project_a):
    app = device_client(project_a, name="Acme CLI")
    yield Device(issuer, app.client_id)


def test_a_device_gets_tokens_while_the_person_signs_in_and_confirms_the_code(page, device, issuer, end_user_a):
    codes = device.start()
    page.goto(codes["verification_uri"])
    page.get_by_label("Code").fill(codes["user_code"].lower())
    screenshot(page, "device-enter-code")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").wait_for()
    assert page.locator("#user-code").inner_text() == codes["user_code"]
    assert page.locator("#client-name").inner_text() == "Acme CLI"
    screenshot(page, "device-confirm-code")
    page.get_by_role("button", name="Allow").click()
    assert page.locator("#device-result").inner_text() == "Device connected"

    tokens = device.result()
    assert tokens["token_type"] == "Bearer" and tokens["access_token"] and tokens["refresh_token"]
    assert set(device.errors) <= {"authorization_pending", "slow_down"}
    access = AccessToken.objects.get()
    assert access.user == end_user_a and access.resource == ["https://mcp.alpha.example/mcp"]
    assert DeviceGrant.objects.get().redeemed_at is not None


def test_a_person_who_denies_leaves_the_device_with_access_denied(page, device, end_user_a):
    codes = device.start()
    page.goto(codes["verification_uri_complete"])
    page.get_by_label("Email").fill("eve@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Deny").click()
    assert page.locator("#device-result").inner_text() == "Device not connected"
    assert device.result() == {"error": "access_denied"}
    assert not AccessToken.objects.exists()


def test_handoff_mode_the_operator_vouches_and_the_person_confirms_the_code(page, device, issuer, project_a,
                                                                            client_app):  # noqa: F811
    project_a.login_mode, project_a.login_url = "handoff", f"{client_app.url}/login"
    project_a.save()
    client_app.issuer, client_app.secret = issuer, project_a.registration_secret
    codes = device.start()
    page.goto(codes["verification_uri_complete"])
    page.get_by_role("button", name="Allow").wait_for()
    assert page.locator("#user-code").inner_text() == codes["user_code"]
    assert client_app.described["client_name"] == "Acme CLI"
    page.get_by_role("button", name="Allow").click()
    assert page.locator("#device-result").inner_text() == "Device connected"
    assert "access_token" in device.result()
    assert AccessToken.objects.get().user == User.objects.get(project=project_a, subject="operator-user-7")
