"""Authorization refusals a person can read (API.md "Errors": "An authorization error page says in
plain words what is wrong ... without secrets or fetched bodies"; RFC 6749 §4.1.2.1: a 400 page,
never a redirect, when the client or its redirect URI cannot be trusted).

CIMD documents are served by the real local TLS server of tests/oauth/clients/test_cimd.py; each case asserts
the page's exact words for the developer, and that nothing fetched or internal is on it.
"""

import html

import pytest
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from oauth.models import Application, AuthorizationRequest, Grant
from tests.authz import authorize_path
from tests.oauth.clients.test_cimd import docs  # noqa: F401 - the local TLS document server fixture

pytestmark = pytest.mark.django_db

NOT_REGISTERED = "The application that sent you here is not registered with this service."
BODY_MARKER = "body-marker-7f3a"


class Named:
    """Something with a client_id, for `authorize_path`."""

    def __init__(self, client_id: str):
        self.client_id = client_id


def refusal(client, project, cid: str, **params) -> str:
    """GET authorize for client_id `cid`; assert the 400 page (no redirect, nothing stored); its text."""
    response = client.get(authorize_path(project, Named(cid), **params))
    assert response.status_code == 400
    assert "Location" not in response
    assert "no-store" in response["Cache-Control"]
    assert AuthorizationRequest.objects.count() == 0 and Grant.objects.count() == 0
    return html.unescape(response.content.decode())


def reason(text: str) -> str:
    """The sentence addressed to the developer (`<p id="reason">`)."""
    start = text.index('<p id="reason">') + len('<p id="reason">')
    return text[start:text.index("</p>", start)]


# -- registered clients ------------------------------------------------------------------------------------

def test_it_says_the_client_id_is_unknown(client, project_a):
    text = refusal(client, project_a, "no-such-client")
    assert NOT_REGISTERED in text
    assert reason(text) == "unknown client_id"


def test_it_says_the_client_id_is_missing(client, project_a):
    assert reason(refusal(client, project_a, "x", client_id=None)) == "client_id is missing"


def test_it_says_the_client_id_is_repeated(client, project_a, public_client_a):
    response = client.get(authorize_path(project_a, public_client_a) + f"&client_id={public_client_a.client_id}")
    assert response.status_code == 400
    assert reason(html.unescape(response.content.decode())) == "client_id is repeated"


def test_it_does_not_tell_another_projects_client_apart_from_an_unknown_one(client, project_a, public_client_b):
    assert reason(refusal(client, project_a, public_client_b.client_id)) == "unknown client_id"


def test_it_says_the_client_was_disabled(client, project_a, public_client_a):
    Application.objects.filter(pk=public_client_a.pk).update(disabled_at=timezone.now())
    assert reason(refusal(client, project_a, public_client_a.client_id)) == \
        "this client has been disabled by the project's operator"


def test_it_hints_that_a_metadata_document_url_must_be_https(client, project_a):
    assert reason(refusal(client, project_a, "http://app.example/client.json")) == \
        "unknown client_id (a Client ID Metadata Document URL must be https)"


def test_it_lists_the_registered_uris_for_an_unregistered_redirect(client, project_a, public_client_a):
    text = refusal(client, project_a, public_client_a.client_id, redirect_uri="https://client.example/other")
    assert "The application asked to send you to an address it has not registered." in text
    assert reason(text) == (
        "redirect_uri is not one of this client's registered URIs (compared exactly; only a loopback port may "
        "differ). Registered: http://127.0.0.1/callback, https://client.example/callback")
    assert "https://client.example/other" not in text  # the request's own value is not echoed


# -- CIMD clients --------------------------------------------------------------------------------------------

def test_it_says_the_project_does_not_accept_metadata_documents(client, project_a, docs):  # noqa: F811
    project_a.cimd_enabled = False
    project_a.save()
    url = docs.serve_client()
    assert reason(refusal(client, project_a, url)) == \
        "this project does not accept Client ID Metadata Documents (an https URL as client_id)"
    assert docs.hits == {}


def test_it_says_the_document_answered_404(client, project_a, docs):  # noqa: F811
    url = docs.url("/missing.json")
    docs.serve("/missing.json", BODY_MARKER.encode(), status=404, headers={"Content-Type": "text/plain"})
    text = refusal(client, project_a, url)
    assert reason(text) == f"this client's metadata document could not be fetched: HTTP 404 from {url}"
    assert BODY_MARKER not in text


def test_it_says_a_redirect_is_not_followed(client, project_a, docs):  # noqa: F811
    target = docs.serve_client(path="/real.json")
    url = docs.serve("/client.json", b"", status=302, headers={"Location": target})
    assert reason(refusal(client, project_a, url)) == \
        f"this client's metadata document could not be fetched: HTTP 302 from {url}"


def test_it_says_the_documents_client_id_is_not_its_url(client, project_a, docs):  # noqa: F811
    url = docs.url("/client.json")
    docs.serve_client(client_id="https://elsewhere.example/client.json", client_name=BODY_MARKER)
    text = refusal(client, project_a, url)
    assert reason(text) == f"the document's client_id does not equal its URL ({url})"
    assert BODY_MARKER not in text and "elsewhere.example" not in text


@pytest.mark.parametrize("fields,said", [
    ({"client_name": None}, "the document has no client_name"),
    ({"redirect_uris": []}, "the document has no redirect_uris"),
    ({"client_secret": BODY_MARKER}, "the document carries a client secret"),
])
def test_it_names_the_rule_a_document_breaks(client, project_a, docs, fields, said):  # noqa: F811
    url = docs.serve_client(**fields)
    text = refusal(client, project_a, url)
    assert reason(text) == f"{said} ({url})"
    assert BODY_MARKER not in text


def test_it_names_each_unacceptable_redirect_uri_of_a_document(client, project_a, docs):  # noqa: F811
    url = docs.serve_client(redirect_uris=["javascript:alert(1)", "http://evil.example/cb"])
    assert reason(refusal(client, project_a, url)) == (
        "the document's metadata is invalid: invalid_redirect_uri: No acceptable redirect URI: "
        "redirect_uris[0] uses the javascript: scheme, which is never allowed; redirect_uris[1] uses http, which "
        f"is allowed only as http://127.0.0.1, http://[::1] or http://localhost (any port). ({url})")


def test_it_says_the_document_is_not_json_without_quoting_its_content_type(client, project_a, docs):  # noqa: F811
    url = docs.serve("/client.json", {"client_name": "x"}, headers={"Content-Type": f"text/html; x={BODY_MARKER}"})
    text = refusal(client, project_a, url)
    assert reason(text) == f"this client's metadata document is not JSON, at {url}"
    assert BODY_MARKER not in text


def test_it_says_the_document_is_not_valid_json(client, project_a, docs):  # noqa: F811
    url = docs.serve("/client.json", f"{{{BODY_MARKER}".encode())
    text = refusal(client, project_a, url)
    assert reason(text) == f"this client's metadata document is not valid JSON, at {url}"
    assert BODY_MARKER not in text


def test_it_says_the_document_is_too_large(client, project_a, docs):  # noqa: F811
    url = docs.serve_client(client_uri="https://claude.ai/" + "x" * 6000)
    assert reason(refusal(client, project_a, url)) == \
        f"this client's metadata document could not be fetched: the response is larger than 5120 bytes ({url})"


def test_it_says_a_private_address_is_not_allowed_without_naming_it(client, project_a, docs, settings):  # noqa: F811
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    url = docs.serve_client().replace("127.0.0.1", "localhost")  # resolves to 127.0.0.1 / ::1
    text = refusal(client, project_a, url)
    assert reason(text) == f"this client's metadata document could not be fetched: the address is not allowed ({url})"
    assert "127.0.0.1" not in text and "::1" not in text
    assert docs.hits == {}


def test_it_says_the_certificate_could_not_be_verified(client, project_a, docs, settings):  # noqa: F811
    settings.OUTBOUND_CA_BUNDLE = ""
    url = docs.serve_client()
    assert reason(refusal(client, project_a, url)) == \
        f"this client's metadata document could not be fetched: the server's TLS certificate could not be verified ({url})"


def test_it_says_the_server_did_not_answer_in_time(client, project_a, docs):  # noqa: F811
    url = docs.url("/slow.json")
    assert reason(refusal(client, project_a, url)) == \
        f"this client's metadata document could not be fetched: the server did not answer in time ({url})"


def test_it_says_a_client_id_url_with_dot_segments_is_unusable(client, project_a, docs):  # noqa: F811
    url = docs.url("/a/../client.json")
    assert reason(refusal(client, project_a, url)) == \
        "the client_id is not a usable metadata document URL: client_id URL must not contain dot path segments"
    assert docs.hits == {}


def test_it_repeats_the_reason_while_the_url_is_backed_off(client, project_a, docs):  # noqa: F811
    url = docs.url("/missing.json")
    refusal(client, project_a, url)
    docs.serve_client(path="/missing.json")  # fixed, but backed off for a while
    assert reason(refusal(client, project_a, url)) == (
        f"this client's metadata document could not be fetched: HTTP 404 from {url} "
        f"(not fetched again for up to {oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS} seconds after a failure)")
    assert docs.hits["/missing.json"] == 1


def test_it_refuses_an_unusable_document_before_the_handoff(client, project_a, docs):  # noqa: F811
    project_a.login_mode, project_a.login_url = "handoff", "https://login.alpha.example/sso"
    project_a.save()
    url = docs.url("/missing.json")
    text = refusal(client, project_a, url)
    assert reason(text) == f"this client's metadata document could not be fetched: HTTP 404 from {url}"
    assert "login.alpha.example" not in text
