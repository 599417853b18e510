"""Issue 21 in real Chromium: the overview's activity charts after known numbers of issued and refused
requests, and a grant's timeline on the end user's page; screenshots of both."""

import os
import re

import pytest

from tests.activity.test_counts import (
    INVALID_CLIENT,
    INVALID_GRANT,
    ISSUED,
    RATE_LIMITED,
    REGISTERED,
    make_known_numbers,
)
from tests.activity.test_timeline import STORY, tell_story
from tests.browser import screenshot
from tests.e2e.test_browser_dashboard import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def test_the_overview_and_a_grant_timeline_in_a_browser(live_server, page, client, alice, project_a, end_user_a,
                                                         confidential_client_a, public_client_a):
    make_known_numbers(client, project_a, confidential_client_a, public_client_a)
    project_a.rate_limits = {}
    project_a.save()
    app = tell_story(client, project_a, end_user_a)  # 1 more registration, 1 authorization, 3 tokens, 1 refused
    sign_in(page, live_server.url, alice.email)

    page.goto(f"{live_server.url}/projects/{project_a.slug}?range=24h")
    totals = {key: page.locator(f'[data-chart="{key}"]').inner_text()
              for key in ("tokens", "authorizations", "registrations", "failures")}
    assert totals == {"tokens": str(ISSUED + 3), "authorizations": "1", "registrations": str(REGISTERED + 1),
                      "failures": str(INVALID_CLIENT + INVALID_GRANT + RATE_LIMITED + 1)}
    assert page.locator("#failure-reasons tbody tr").count() == 3
    page.get_by_role("link", name="7 days").click()
    page.wait_for_url(re.compile(r"range=7d"))
    assert page.locator('[data-chart="tokens"]').inner_text() == str(ISSUED + 3)
    page.get_by_role("link", name="24 hours").click()
    page.locator("#activity").scroll_into_view_if_needed()
    screenshot(page, "activity-overview")

    page.goto(f"{live_server.url}/projects/{project_a.slug}/users/{end_user_a.pk}")
    assert page.locator(".timeline li").evaluate_all("items => items.map(i => i.dataset.kind)") == STORY
    assert page.locator('[data-warning="two_networks"]').is_visible()
    assert page.locator('[data-warning="refresh_reuse"]').is_visible()
    screenshot(page, "grant-timeline-end-user")
    page.goto(f"{live_server.url}/projects/{project_a.slug}/clients/{app.pk}")
    page.locator("#grants").scroll_into_view_if_needed()
    screenshot(page, "grant-timeline-client")
