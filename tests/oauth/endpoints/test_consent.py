"""The consent page (API.md "Authorization": branded, who asks for what, Allow/Deny, remembered)."""

import html

import pytest
from django.test import Client

from oauth.models import AuthorizationRequest, Consent, Grant
from projects.models import AuditEvent
from tests.authz import LOOPBACK_REDIRECT, authorize_path, cimd_client, query_of, sign_in_as, without_query

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, end_user_a):
    sign_in_as(client, end_user_a)
    return client


def consent_path(browser, project, app, **params) -> str:
    response = browser.get(authorize_path(project, app, **params))
    assert response["Location"].startswith(f"/p/{project.slug}/oauth/consent?request=")
    return response["Location"]


def test_it_shows_who_asks_for_what(browser, project_a, public_client_a):
    project_a.display_name, project_a.logo_url, project_a.accent_color = "Alpha Cloud", "https://cdn.alpha.example/logo.png", "#0a7d33"
    project_a.save()
    response = browser.get(consent_path(browser, project_a, public_client_a, scope="mcp:tools offline_access"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Alpha Cloud" in html
    assert 'src="https://cdn.alpha.example/logo.png"' in html and "--accent: #0a7d33" in html
    assert '<span id="client-name">Public MCP client</span>' in html
    assert '<strong id="redirect-host">127.0.0.1</strong>' in html
    assert "Use the server&#x27;s tools" in html and "Stay connected when you are away" in html
    assert "Read the server" not in html  # only the requested scopes
    assert '<code id="resource">https://mcp.alpha.example/mcp</code>' in html
    assert 'value="allow">Allow</button>' in html and 'value="deny">Deny</button>' in html
    assert "Verified domain" not in html


def test_it_cannot_be_framed(browser, project_a, public_client_a):
    response = browser.get(consent_path(browser, project_a, public_client_a))
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_it_marks_a_cimd_clients_domain_as_verified(browser, project_a):
    app = cimd_client(project_a)
    html = browser.get(consent_path(browser, project_a, app)).content.decode()
    assert "Verified domain app.cimd.example" in html


def test_it_refuses_a_made_up_accent_color(browser, project_a, public_client_a):
    project_a.accent_color = "red;}"
    project_a.save()
    html = browser.get(consent_path(browser, project_a, public_client_a)).content.decode()
    assert "--accent: #4f46e5" in html


def test_allow_redirects_with_a_code_and_remembers(browser, project_a, public_client_a, end_user_a):
    path = consent_path(browser, project_a, public_client_a, scope="mcp:tools")
    response = browser.post(path, {"decision": "allow"})
    assert response.status_code == 302
    assert without_query(response["Location"]) == LOOPBACK_REDIRECT
    params = query_of(response["Location"])
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "st-123" and params["iss"] == project_a.issuer
    assert Grant.objects.get(application=public_client_a).user == end_user_a
    assert Consent.objects.get(user=end_user_a, client=public_client_a).scopes == ["mcp:tools"]
    assert AuthorizationRequest.objects.get().status == "completed"
    assert AuditEvent.objects.filter(project=project_a, kind="consent.allowed").count() == 1


def test_a_remembered_consent_is_not_asked_again(browser, project_a, public_client_a):
    browser.post(consent_path(browser, project_a, public_client_a, scope="mcp:tools"), {"decision": "allow"})
    response = browser.get(authorize_path(project_a, public_client_a, scope="mcp:tools"))
    assert set(query_of(response["Location"])) == {"code", "state", "iss"}
    assert Grant.objects.count() == 2


def test_deny_redirects_with_access_denied(browser, project_a, public_client_a, end_user_a):
    response = browser.post(consent_path(browser, project_a, public_client_a), {"decision": "deny"})
    params = query_of(response["Location"])
    assert without_query(response["Location"]) == LOOPBACK_REDIRECT
    assert params["error"] == "access_denied" and params["state"] == "st-123" and params["iss"] == project_a.issuer
    assert "code" not in params
    assert Grant.objects.count() == 0 and Consent.objects.count() == 0
    assert AuthorizationRequest.objects.get().status == "denied"


def test_a_decision_is_taken_once(browser, project_a, public_client_a):
    path = consent_path(browser, project_a, public_client_a)
    browser.post(path, {"decision": "allow"})
    response = browser.post(path, {"decision": "allow"})
    assert response.status_code == 400
    assert Grant.objects.count() == 1


def test_it_needs_a_decision(browser, project_a, public_client_a):
    response = browser.post(consent_path(browser, project_a, public_client_a), {"decision": "maybe"})
    assert response.status_code == 400
    assert AuthorizationRequest.objects.get().status == "pending"


def test_it_is_csrf_protected(project_a, public_client_a, end_user_a):
    browser = Client(enforce_csrf_checks=True)
    sign_in_as(browser, end_user_a)
    response = browser.post(consent_path(browser, project_a, public_client_a), {"decision": "allow"})
    assert response.status_code == 403
    assert Grant.objects.count() == 0 and AuthorizationRequest.objects.get().status == "pending"


def test_it_refuses_another_browser(browser, project_a, public_client_a, end_user_a):
    path = consent_path(browser, project_a, public_client_a)
    other = Client()
    sign_in_as(other, end_user_a)
    assert other.post(path, {"decision": "allow"}).status_code == 400
    assert Grant.objects.count() == 0


def test_it_sends_a_signed_out_browser_to_sign_in(browser, project_a, public_client_a, end_user_a):
    path = consent_path(browser, project_a, public_client_a)
    session = browser.session
    del session[f"enduser:{project_a.pk}"]
    session.save()
    response = browser.post(path, {"decision": "allow"})
    assert response["Location"] == path.replace("consent", "signin")
    assert Grant.objects.count() == 0


def test_a_client_disabled_meanwhile_gets_nothing(browser, project_a, public_client_a):
    from django.utils import timezone

    path = consent_path(browser, project_a, public_client_a)
    public_client_a.disabled_at = timezone.now()
    public_client_a.save()
    response = browser.post(path, {"decision": "allow"})
    assert response.status_code == 400 and "Location" not in response
    assert Grant.objects.count() == 0


def test_a_native_apps_scheme_may_receive_the_form_redirect(browser, project_a, public_client_a):
    public_client_a.redirect_uris += " com.example.app:/oauth/callback"
    public_client_a.save()
    path = consent_path(browser, project_a, public_client_a, redirect_uri="com.example.app:/oauth/callback")
    page = browser.get(path)
    assert "form-action 'self' http: https: com.example.app:;" in page["Content-Security-Policy"]
    assert ('<span id="redirect-app">The code will be sent to the app that handles com.example.app: links</span>'
            in page.content.decode())
    response = browser.post(path, {"decision": "allow"})
    assert response["Location"].startswith("com.example.app:/oauth/callback?code=")


def test_it_names_the_app_that_receives_the_code_for_a_private_use_scheme(browser, project_a, public_client_a):
    public_client_a.redirect_uris += " cursor://anysphere.cursor-mcp/oauth/callback"
    public_client_a.save()
    path = consent_path(browser, project_a, public_client_a, redirect_uri="cursor://anysphere.cursor-mcp/oauth/callback")
    text = html.unescape(browser.get(path).content.decode())
    assert "The code will be sent to the app that handles cursor:// links" in text
    assert "Make sure the app on this device that opens <strong>cursor://</strong> links is the one you meant." in text
    assert 'id="redirect-host"' not in text  # no host to show: anysphere.cursor-mcp is not a web host
