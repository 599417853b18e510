"""Issue 6 "Done when": the operator dashboard in real Chromium, with screenshots of each main page."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from oauth.models import AccessToken, Application
from projects.models import AuditEvent, Project, ProjectMember, ProjectSecret
from tests.browser import screenshot
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Django refuses sync ORM calls from inside an event loop; Playwright's sync API runs one.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PHONE = {"width": 390, "height": 844}


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Projects").wait_for()


def accept_dialogs(page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_an_operator_signs_up_creates_a_project_and_sees_its_secret_once(live_server, page, db):
    page.goto(f"{live_server.url}/login")
    page.get_by_role("link", name="Create an operator account").click()
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "dashboard-sign-up")
    page.get_by_role("button", name="Create account").click()

    page.get_by_label("Project name").fill("Gamma Tools")
    page.get_by_label("Slug").fill("gamma")
    page.get_by_label("MCP server URL").fill("https://mcp.gamma.example/mcp")
    screenshot(page, "dashboard-project-new")
    page.get_by_role("button", name="Create project").click()

    revealed = page.get_by_role("textbox", name="Registration secret")
    secret = revealed.input_value()
    assert re.fullmatch(r"mcps_[A-Za-z0-9_-]{43}", secret)
    project = Project.objects.get(slug="gamma")
    assert ProjectSecret.authenticate(project, secret, "register") is not None
    screenshot(page, "dashboard-project-created")

    page.get_by_role("link", name="Open the project").click()
    assert page.locator("#issuer").inner_text() == "http://127.0.0.1:8000/p/gamma"
    for path in ("", "/secrets", "/settings"):
        page.goto(f"{live_server.url}/projects/gamma{path}")
        assert secret not in page.content()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_server.url, "dana@example.com")
    page.get_by_role("link", name=re.compile("Gamma Tools")).click()
    assert page.locator("#issuer").inner_text() == "http://127.0.0.1:8000/p/gamma"


def test_a_secret_is_shown_once_with_a_copy_button_and_never_again(live_server, page, project_a):
    accept_dialogs(page)
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(f"{live_server.url}/projects/alpha/secrets")
    page.get_by_label("Secret name").fill("Introspection for the API gateway")
    page.get_by_label("introspect").check()
    page.get_by_role("button", name="Create secret").click()

    value = page.locator("#new-secret").input_value()
    assert value.startswith("mcps_")
    page.locator(".reveal").get_by_role("button", name="Copy").click()
    page.locator(".reveal").get_by_role("button", name="Copied").wait_for()
    screenshot(page, "dashboard-secret-created")
    row = ProjectSecret.authenticate(project_a, value, "introspect")
    assert row is not None and row.permissions == ["introspect"]

    page.goto(f"{live_server.url}/projects/alpha/secrets")
    assert value not in page.content() and page.locator("#new-secret").count() == 0
    page.reload()
    assert value not in page.content()

    # Revoking through htmx swaps the row in place.
    page.locator(f"#secret-{row.pk}").get_by_role("button", name=re.compile("Revoke")).click()
    page.locator(f"#secret-{row.pk}").get_by_text("Revoked").wait_for()
    assert ProjectSecret.authenticate(project_a, value, "introspect") is None


def test_an_operator_revokes_a_clients_tokens_and_deletes_it(live_server, page, project_a, public_client_a,
                                                              confidential_client_a, end_user_a):
    for i in range(2):
        AccessToken.objects.create(user=end_user_a, application=public_client_a, token=f"mcpat_browser_{i}",
                                   expires=timezone.now() + timedelta(hours=1), scope="mcp:tools")
    accept_dialogs(page)
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(f"{live_server.url}/projects/alpha/clients")
    page.get_by_label("Search").fill(public_client_a.name)
    page.wait_for_url(re.compile(r"q="))
    page.locator("#clients-table").get_by_role("link", name=public_client_a.name).click()
    assert page.locator("#live-tokens").inner_text() == "2"
    screenshot(page, "dashboard-client-detail")

    page.get_by_role("button", name="Revoke all tokens").click()
    page.locator(".flash").get_by_text("Revoked all tokens").wait_for()
    assert page.locator("#live-tokens").inner_text() == "0"
    assert not AccessToken.objects.filter(application=public_client_a).exists()

    page.get_by_role("button", name="Delete client").click()
    page.locator(".flash").get_by_text(f"Deleted {public_client_a.name}").wait_for()
    assert not Application.objects.filter(pk=public_client_a.pk).exists()
    assert Application.objects.filter(pk=confidential_client_a.pk).exists()
    assert AuditEvent.objects.filter(project=project_a, kind="client.deleted").exists()


def test_a_settings_change_takes_effect_on_the_discovery_document(live_server, page, project_a):
    discovery = f"{live_server.url}/.well-known/oauth-authorization-server/p/alpha"
    sign_in(page, live_server.url, "alice@example.com")
    assert "registration_endpoint" in page.request.get(discovery).json()

    page.goto(f"{live_server.url}/projects/alpha/settings")
    page.get_by_label("Open dynamic registration").uncheck()
    page.get_by_label("Registration with a project secret").uncheck()
    page.get_by_label("Scopes catalog").fill("mcp:tools — Use the tools\nreports:read — Read your reports")
    page.get_by_role("button", name="Save settings").click()
    page.locator(".flash").get_by_text("Settings saved").wait_for()

    metadata = page.request.get(discovery).json()
    assert "registration_endpoint" not in metadata
    assert metadata["scopes_supported"] == ["mcp:tools", "reports:read"]
    event = AuditEvent.objects.get(project=project_a, kind="settings.changed")
    assert set(event.detail["changed"]) == {"open_registration_enabled", "secret_registration_enabled", "scopes"}


def test_a_viewer_cannot_change_anything(live_server, page, project_a, bob, public_client_a):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    sign_in(page, live_server.url, "bob@example.com")
    page.goto(f"{live_server.url}/projects/alpha/settings")
    assert page.get_by_label("Open dynamic registration").is_disabled()
    assert page.get_by_role("button", name="Save settings").count() == 0
    assert page.get_by_role("button", name="Rotate signing key").count() == 0
    screenshot(page, "dashboard-settings-viewer")
    page.goto(f"{live_server.url}/projects/alpha/clients/{public_client_a.pk}")
    assert page.get_by_role("button", name="Delete client").count() == 0
    page.goto(f"{live_server.url}/projects/alpha/secrets")
    assert page.get_by_role("button", name="Create secret").count() == 0

    # A forged POST with a valid CSRF token is still refused by role.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(f"{live_server.url}/projects/alpha/clients/{public_client_a.pk}/delete",
                                 headers={"X-CSRFToken": csrf}, form={"csrfmiddlewaretoken": csrf})
    assert response.status == 403
    assert Application.objects.filter(pk=public_client_a.pk).exists()


def test_another_operators_project_answers_404(live_server, page, project_a, project_b):
    sign_in(page, live_server.url, "alice@example.com")
    assert page.get_by_role("link", name=re.compile("Project BRAVO")).count() == 0
    for path in ("", "/clients", "/settings", "/secrets"):
        response = page.goto(f"{live_server.url}/projects/bravo{path}")
        assert response.status == 404, path


def test_the_api_docs_render_under_the_content_security_policy(live_server, page, db):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/docs/endpoints")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "mcpauth API" in page.locator(".swagger-ui .info .title").inner_text()
    page.get_by_text("/p/{slug}/oauth/token").first.wait_for()
    assert not [e for e in errors if "Content Security Policy" in e]
    screenshot(page, "dashboard-api-docs")


def _seed(project, client, person) -> None:
    for i, kind in enumerate(["client.registered", "consent.allowed", "token.issued", "token.issued",
                              "token.refreshed", "token.refresh_reuse_detected"] * 3):
        event = AuditEvent.record(project, kind, actor="system", client_id=client.client_id)
        AuditEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=i % 9))
    for i in range(3):
        Application.objects.create(project=project, name="Cursor", client_type="public", registration_path="open",
                                   authorization_grant_type="authorization-code", fingerprint="c" * 64,
                                   redirect_uris=f"http://127.0.0.1/cb{i}", metadata={"software_id": "cursor"})
    AccessToken.objects.create(user=person, application=client, token="mcpat_seed",
                               expires=timezone.now() + timedelta(hours=1), scope="mcp:tools")


# Every visible form control has a label (or an aria-label): the ids of those that do not.
UNLABELLED_CONTROLS = """
[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label"))
  .map(el => el.id || el.name)
"""

MAIN_PAGES = [
    ("projects", "/"),
    ("overview", "/projects/alpha"),
    ("clients", "/projects/alpha/clients"),
    ("client-detail", None),
    ("client-new", "/projects/alpha/clients/new"),
    ("end-users", "/projects/alpha/users"),
    ("secrets", "/projects/alpha/secrets"),
    ("settings", "/projects/alpha/settings"),
    ("members", "/projects/alpha/members"),
    ("audit", "/projects/alpha/audit"),
    ("account", "/account"),
]


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_each_main_page_renders_on_a_laptop_and_a_phone(live_server, browser, project_a, public_client_a,
                                                        confidential_client_a, end_user_a, viewport):
    _seed(project_a, public_client_a, end_user_a)
    size = PHONE if viewport == "phone" else {"width": 1366, "height": 860}
    context = browser.new_context(viewport=size)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login")
        screenshot(page, f"dashboard-sign-in-{viewport}")
        sign_in(page, live_server.url, "alice@example.com")
        for name, path in MAIN_PAGES:
            path = path or f"/projects/alpha/clients/{confidential_client_a.pk}"
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, path
            # Nothing spills sideways: the page is no wider than the viewport.
            assert page.evaluate("document.documentElement.scrollWidth") <= size["width"] + 1, name
            assert page.evaluate(UNLABELLED_CONTROLS) == [], name
            screenshot(page, f"dashboard-{name}-{viewport}")
    finally:
        context.close()


def test_the_dashboard_is_usable_with_the_keyboard_alone(live_server, page, project_a):
    page.goto(f"{live_server.url}/login")
    page.keyboard.type("alice@example.com")  # the email field has focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Projects").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    page.goto(f"{live_server.url}/projects/alpha/secrets")
    page.get_by_label("Secret name").focus()
    page.keyboard.type("Keyboard secret")
    page.keyboard.press("Tab")  # to the first permission checkbox
    page.keyboard.press("Space")
    page.get_by_role("button", name="Create secret").focus()
    page.keyboard.press("Enter")
    value = page.locator("#new-secret").input_value()
    row = ProjectSecret.authenticate(project_a, value, "register")
    assert row is not None and row.name == "Keyboard secret" and "register" in row.permissions


def test_revoking_a_persons_grants_updates_their_row_in_place(live_server, page, project_a, public_client_a,
                                                              end_user_a):
    AccessToken.objects.create(user=end_user_a, application=public_client_a, token="mcpat_person_row",
                               expires=timezone.now() + timedelta(hours=1), scope="mcp:tools")
    accept_dialogs(page)
    sign_in(page, live_server.url, "alice@example.com")
    page.goto(f"{live_server.url}/projects/alpha/users")
    row = page.locator(f"#user-{end_user_a.pk}")
    assert row.locator("td[data-label='Live tokens']").inner_text() == "1"
    row.get_by_role("button", name=re.compile("Revoke grants")).click()
    page.locator(f"#user-{end_user_a.pk} td[data-label='Live tokens']").get_by_text("0").wait_for()
    assert page.url.endswith("/projects/alpha/users")  # swapped in place, no navigation
    assert not AccessToken.objects.filter(user=end_user_a).exists()
