"""Exact redirect URI matching at GET {issuer}/oauth/authorize (API.md "Redirect URIs"; OAuth 2.1
§2.3.1 and RFC 9700 §4.1.3: simple string comparison; RFC 8252 §7.3: only a loopback port may vary).

Every mismatch is a 400 page, never a redirect: no code, no pending request, and the page says
which URIs the client registered. The check runs before any sign-in page or handoff redirect.
"""

import html

import pytest

from oauth.models import AccessToken, Application, AuthorizationRequest, Consent, Grant
from projects.models import Project
from tests.authz import authorize_path, cimd_client, query_of, sign_in_as

pytestmark = pytest.mark.django_db

REGISTERED = [
    "https://app.example/cb",
    "https://app.example/cb?tenant=1",
    "http://127.0.0.1/callback",
    "http://localhost:33418/cb-local",
    "http://[::1]/callback",
    "cursor://anysphere.cursor-mcp/oauth/callback",
    "com.example.app:/oauth2redirect",
    "https://xn--bcher-kva.example/cb",  # punycode of "bücher.example"
    "https://apple.example/cb",
]
UNREGISTERED = "redirect_uri is not one of this client's registered URIs"


@pytest.fixture
def app(project_a) -> Application:
    """A first-party client (no consent in the way), so an allowed redirect gets a code at once."""
    return Application.objects.create(
        project=project_a, name="Exact app", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris=" ".join(REGISTERED),
        registration_path=Application.Path.SECRET, first_party=True,
        metadata={"client_name": "Exact app", "grant_types": ["authorization_code", "refresh_token"]},
    )


@pytest.fixture
def browser(client, end_user_a):
    sign_in_as(client, end_user_a)
    return client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def assert_refused(response, reason: str = UNREGISTERED) -> str:
    """A 400 page, no redirect, nothing stored; returns the page's text."""
    assert response.status_code == 400
    assert "Location" not in response
    assert response["Content-Type"].startswith("text/html")
    assert AuthorizationRequest.objects.count() == 0 and Grant.objects.count() == 0
    text = page_text(response)
    assert reason in text
    return text


def assert_code_sent_to(response, redirect_uri: str) -> None:
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(redirect_uri + ("&" if "?" in redirect_uri else "?"))
    assert "code" in query_of(location)
    assert Grant.objects.get().redirect_uri == redirect_uri


# -- refused: anything but the registered string ------------------------------------------------------

@pytest.mark.parametrize("requested", [
    pytest.param("https://APP.example/cb", id="host-case"),
    pytest.param("HTTPS://app.example/cb", id="scheme-case"),
    pytest.param("https://app.example/CB", id="path-case"),
    pytest.param("https://app.example/cb/", id="trailing-slash"),
    pytest.param("https://app.example:443/cb", id="default-port-written-out"),
    pytest.param("https://app.example/%63b", id="percent-encoded-unreserved"),
    pytest.param("https://app.example/cb?tenant=%31", id="percent-encoded-query"),
    pytest.param("https://app@evil.example/cb", id="user-info-evil-host"),
    pytest.param("https://evil@app.example/cb", id="user-info-same-host"),
    pytest.param("https://app.example/cb#frag", id="fragment"),
    pytest.param("https://app.example/cb#", id="empty-fragment"),
    pytest.param("https://app.example/x/../cb", id="dot-dot-segment"),
    pytest.param("https://app.example/./cb", id="dot-segment"),
    pytest.param("https://app.example/cb?x=1", id="extra-query"),
    pytest.param("https://app.example/cb?tenant=1&x=1", id="extra-query-parameter"),
    pytest.param("https://app.example/cb?", id="empty-query"),
    pytest.param("https://аpple.example/cb", id="idn-lookalike-cyrillic-a"),
    pytest.param("https://xn--pple-43d.example/cb", id="idn-lookalike-cyrillic-a-as-punycode"),
    pytest.param("https://bücher.example/cb", id="idn-unicode-for-registered-punycode"),
    pytest.param("https://XN--bcher-kva.example/cb", id="idn-punycode-prefix-case"),
    pytest.param("https://app.example./cb", id="trailing-dot-host"),
    pytest.param("https://app.example/cb;x=1", id="path-parameter"),
    pytest.param("http://app.example/cb", id="http-for-https"),
])
def test_it_refuses_a_redirect_uri_that_is_not_the_registered_string(browser, project_a, app, requested):
    text = assert_refused(browser.get(authorize_path(project_a, app, redirect_uri=requested)))
    assert "Registered: https://app.example/cb, " in text


@pytest.mark.parametrize("requested", [
    pytest.param("http://127.0.0.1:5000/callback/x", id="loopback-path-differs"),
    pytest.param("http://127.0.0.1:5000/Callback", id="loopback-path-case"),
    pytest.param("http://127.0.0.1:5000/callback?x=1", id="loopback-extra-query"),
    pytest.param("http://127.0.0.1:33418/cb-local", id="loopback-other-host-literal"),  # localhost registered
    pytest.param("http://LOCALHOST:33418/cb-local", id="loopback-host-case"),
    pytest.param("https://127.0.0.1:5000/callback", id="loopback-https-for-http"),
    pytest.param("http://127.0.0.1:5000@evil.example/callback", id="loopback-user-info"),
    pytest.param("http://127.0.0.1.evil.example:5000/callback", id="loopback-prefix-host"),
    pytest.param("http://127.0.0.1:5000/callback#x", id="loopback-fragment"),
])
def test_it_refuses_a_loopback_redirect_that_differs_in_more_than_the_port(browser, project_a, app, requested):
    assert_refused(browser.get(authorize_path(project_a, app, redirect_uri=requested)))


@pytest.mark.parametrize("requested", [
    pytest.param("cursor://anysphere.cursor-mcp/oauth/callback/", id="trailing-slash"),
    pytest.param("Cursor://anysphere.cursor-mcp/oauth/callback", id="scheme-case"),
    pytest.param("cursor://anysphere.cursor-mcp:443/oauth/callback", id="port"),
    pytest.param("com.example.app:/oauth2redirect/x", id="reverse-dns-path"),
    pytest.param("com.example.app://oauth2redirect", id="reverse-dns-authority"),
    pytest.param("com.evil.app:/oauth2redirect", id="other-app"),
])
def test_it_refuses_a_private_use_redirect_that_is_not_the_registered_string(browser, project_a, app, requested):
    assert_refused(browser.get(authorize_path(project_a, app, redirect_uri=requested)))


# -- allowed: the registered string, and a loopback redirect on any port --------------------------------

@pytest.mark.parametrize("requested", [
    "https://app.example/cb",
    "https://app.example/cb?tenant=1",
    "https://apple.example/cb",
    "https://xn--bcher-kva.example/cb",
])
def test_it_sends_the_code_to_the_registered_string(browser, project_a, app, requested):
    assert_code_sent_to(browser.get(authorize_path(project_a, app, redirect_uri=requested)), requested)


@pytest.mark.parametrize("requested", [
    pytest.param("http://127.0.0.1:61001/callback", id="ipv4-port-added"),
    pytest.param("http://127.0.0.1/callback", id="ipv4-as-registered"),
    pytest.param("http://localhost:58135/cb-local", id="localhost-other-port"),
    pytest.param("http://localhost/cb-local", id="localhost-port-left-out"),
    pytest.param("http://[::1]:8080/callback", id="ipv6-port-added"),
])
def test_it_lets_the_port_of_a_loopback_redirect_vary(browser, project_a, app, requested):
    assert_code_sent_to(browser.get(authorize_path(project_a, app, redirect_uri=requested)), requested)


@pytest.mark.parametrize("requested", ["cursor://anysphere.cursor-mcp/oauth/callback", "com.example.app:/oauth2redirect"])
def test_it_sends_the_code_to_a_private_use_scheme_matched_exactly(browser, project_a, app, requested):
    assert_code_sent_to(browser.get(authorize_path(project_a, app, redirect_uri=requested)), requested)


def test_the_token_endpoint_wants_the_redirect_uri_of_the_code_exactly(browser, project_a, app):
    from tests.authz import VERIFIER

    response = browser.get(authorize_path(project_a, app, redirect_uri="http://127.0.0.1:61001/callback"))
    code = query_of(response["Location"])["code"]
    token = browser.post(f"/p/{project_a.slug}/oauth/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:61002/callback",
        "client_id": app.client_id, "code_verifier": VERIFIER,
    })
    # RFC 6749 §5.2: a redirect URI that differs from the authorization request's is invalid_grant.
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


# -- before any sign-in page, in every login mode ----------------------------------------------------------

def test_it_refuses_an_unregistered_redirect_before_the_sign_in_page(client, project_a, app):
    response = client.get(authorize_path(project_a, app, redirect_uri="https://APP.example/cb"))
    assert_refused(response)
    assert "/oauth/signin" not in response.content.decode()


def test_it_refuses_an_unknown_client_before_the_sign_in_page(client, project_a, app):
    app.client_id = "not-a-client"
    assert_refused(client.get(authorize_path(project_a, app)), "unknown client_id")


def test_it_refuses_an_unregistered_redirect_before_the_handoff(client, project_a, app):
    Project.objects.filter(pk=project_a.pk).update(login_mode="handoff", login_url="https://login.alpha.example/sso")
    response = client.get(authorize_path(project_a, app, redirect_uri="https://app.example/cb/"))
    assert_refused(response)
    assert "login.alpha.example" not in response.content.decode()


def test_it_refuses_an_unknown_client_before_the_handoff(client, project_a, app):
    Project.objects.filter(pk=project_a.pk).update(login_mode="handoff", login_url="https://login.alpha.example/sso")
    app.client_id = "not-a-client"
    assert_refused(client.get(authorize_path(project_a, app)), "unknown client_id")


def test_it_refuses_a_cimd_clients_unregistered_redirect_before_the_sign_in_page(client, project_a):
    cimd = cimd_client(project_a)  # registered http://127.0.0.1/callback
    text = assert_refused(client.get(authorize_path(project_a, cimd, redirect_uri="https://app.cimd.example/cb")))
    assert "Registered: http://127.0.0.1/callback" in text


def test_it_still_signs_in_for_a_registered_redirect(client, project_a, app):
    response = client.get(authorize_path(project_a, app, redirect_uri="https://app.example/cb"))
    assert response.status_code == 302 and "/oauth/signin?request=" in response["Location"]


def test_a_refused_redirect_is_refused_for_a_consented_client_too(browser, project_a, public_client_a, end_user_a):
    Consent.remember(end_user_a, public_client_a, ["mcp:tools"])
    assert_refused(browser.get(authorize_path(project_a, public_client_a, redirect_uri="https://CLIENT.example/callback")))


def test_it_names_a_missing_redirect_uri_when_several_are_registered(browser, project_a, app):
    assert_refused(browser.get(authorize_path(project_a, app, redirect_uri=None)),
                   "redirect_uri is missing, and this client registered more than one")


def test_it_names_a_repeated_redirect_uri(browser, project_a, app):
    path = authorize_path(project_a, app, redirect_uri="https://app.example/cb") + "&redirect_uri=https://app.example/cb"
    assert_refused(browser.get(path), "redirect_uri is repeated")
