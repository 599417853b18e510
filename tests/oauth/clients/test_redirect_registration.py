"""Redirect URIs at registration, DCR and CIMD alike (API.md "Redirect URIs", "Narrow, don't refuse";
RFC 7591 §3.2.1, RFC 8252 §7): unacceptable URIs are dropped and recorded with their reason, the
client keeps the others; 400 invalid_redirect_uri, naming each URI's index and fault, only when
none is left. The rule for a single URI: test_client_metadata.py.
"""

import json

import pytest

from oauth.clients.lookup import load_client
from oauth.models import Application
from projects.models import AuditEvent
from tests.oauth.clients.test_cimd import docs  # noqa: F401 - the local TLS document server fixture

pytestmark = pytest.mark.django_db

URL_A = "/p/alpha/api/oauth/register"
# Cursor (DCR) registers three at once (https://github.com/erp-mafia/accounted/pull/2225), as a "web" app
# (https://github.com/elie222/inbox-zero/pull/3780), public (https://github.com/different-ai/openwork/pull/3059).
CURSOR = {
    "client_name": "Cursor", "application_type": "web", "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback",
                      "https://www.cursor.com/agents/mcp/oauth/callback", "http://localhost:8787/callback"],
}
JAVASCRIPT = "uses the javascript: scheme, which is never allowed"


def register(client, body, **headers):
    return client.post(URL_A, data=json.dumps(body), content_type="application/json", **headers)


def registered_event(project) -> AuditEvent:
    return AuditEvent.objects.get(project=project, kind="client.registered")


def test_it_keeps_all_three_of_cursors_redirect_uris(client, project_a):
    response = register(client, CURSOR)
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == CURSOR["redirect_uris"]
    app = Application.objects.get(project=project_a)
    assert app.redirect_uris.split() == CURSOR["redirect_uris"]
    assert "dropped" not in registered_event(project_a).detail


def test_it_drops_a_javascript_uri_and_keeps_the_good_ones(client, project_a):
    uris = ["javascript:alert(document.cookie)", "https://app.example/cb", "http://127.0.0.1/cb"]
    response = register(client, {**CURSOR, "redirect_uris": uris})
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == uris[1:]  # the values in force (RFC 7591 §3.2.1)
    assert Application.objects.get(project=project_a).redirect_uris == "https://app.example/cb http://127.0.0.1/cb"
    assert registered_event(project_a).detail["dropped"] == {
        "redirect_uris": [{"index": 0, "value": "javascript:alert(document.cookie)", "reason": JAVASCRIPT}]}


@pytest.mark.parametrize("bad,reason", [
    ("data:text/html,<script>x</script>", "uses the data: scheme, which is never allowed"),
    ("file:///etc/passwd", "uses the file: scheme, which is never allowed"),
    ("vbscript:msgbox", "uses the vbscript: scheme, which is never allowed"),
    ("about:blank", "uses the about: scheme, which is never allowed"),
    ("blob:https://app.example/1", "uses the blob: scheme, which is never allowed"),
    ("http://app.example/cb",
     "uses http, which is allowed only as http://127.0.0.1, http://[::1] or http://localhost (any port)"),
    ("https://app.example/cb#top", "has a fragment (RFC 6749 §3.1.2 forbids one)"),
    ("https://user@app.example/cb", "carries user information (user@host)"),
])
def test_it_drops_each_forbidden_kind_with_its_reason(client, project_a, bad, reason):
    response = register(client, {**CURSOR, "redirect_uris": ["https://app.example/cb", bad]})
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == ["https://app.example/cb"]
    assert registered_event(project_a).detail["dropped"]["redirect_uris"] == [{"index": 1, "value": bad, "reason": reason}]


def test_it_refuses_when_no_redirect_uri_is_left_naming_each(client, project_a):
    response = register(client, {**CURSOR, "redirect_uris": ["javascript:alert(1)", "https://app.example/cb#x"]})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_redirect_uri",
        "error_description": f"No acceptable redirect URI: redirect_uris[0] {JAVASCRIPT}; "
                             "redirect_uris[1] has a fragment (RFC 6749 §3.1.2 forbids one).",
    }
    assert Application.objects.count() == 0 and not AuditEvent.objects.filter(kind="client.registered").exists()


def test_it_narrows_an_update_too(client, project_a):
    body = register(client, CURSOR).json()
    update = {**CURSOR, "client_id": body["client_id"], "redirect_uris": ["about:blank", "https://app.example/cb"]}
    response = client.put(body["registration_client_uri"].removeprefix("http://127.0.0.1:8000"),
                          data=json.dumps(update), content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}")
    assert response.status_code == 200
    assert response.json()["redirect_uris"] == ["https://app.example/cb"]
    event = AuditEvent.objects.get(project=project_a, kind="client.updated")
    assert event.detail["dropped"]["redirect_uris"][0]["index"] == 0


def test_a_cimd_document_keeps_its_good_redirect_uris(project_a, docs):  # noqa: F811
    url = docs.serve_client(redirect_uris=["javascript:alert(1)", "https://claude.ai/api/mcp/auth_callback",
                                           "cursor://anysphere.cursor-mcp/oauth/callback"])
    client = load_client(project_a, url)
    assert client is not None
    assert client.redirect_uris.split() == ["https://claude.ai/api/mcp/auth_callback",
                                            "cursor://anysphere.cursor-mcp/oauth/callback"]
    assert registered_event(project_a).detail["dropped"] == {
        "redirect_uris": [{"index": 0, "value": "javascript:alert(1)", "reason": JAVASCRIPT}]}


def test_a_cimd_document_with_no_acceptable_redirect_uri_is_refused(project_a, docs):  # noqa: F811
    url = docs.serve_client(redirect_uris=["javascript:alert(1)"])
    assert load_client(project_a, url) is None
    assert not Application.objects.filter(project=project_a).exists()
