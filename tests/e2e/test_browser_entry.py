"""API.md "Dashboard entry" walked in real Chromium."""

import os

import pytest

from tests.browser import screenshot
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Django refuses sync ORM calls from inside an event loop; Playwright's sync API runs one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_an_operator_signs_in_and_opens_a_project(live_server, page, project_a):
    page.goto(f"{live_server.url}/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "operator-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Project ALPHA").click()
    assert page.locator("#issuer").inner_text() == "http://127.0.0.1:8000/p/alpha"
    screenshot(page, "project-overview")
