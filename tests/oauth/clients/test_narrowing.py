"""Narrow, don't refuse (RFC 7591 §3.2.1) for the documents real MCP clients publish, and what the
dashboard shows of it: the values dropped from a client's request, the recent CIMD fetches and the
refused registrations, with their reasons.

Documents are served by the REAL local TLS server of tests/oauth/clients/test_cimd.py; each is the client's own
published document as quoted in the issue thread cited next to it (only `client_id` is our URL).
DCR bodies are field-by-field in test_client_metadata.py.
"""

import json

import pytest

from oauth.clients.auth import CLIENT_AUTH_METHODS as SUPPORTED_AUTH_METHODS
from oauth.clients.lookup import load_client
from oauth.clients.metadata import Policy, narrow_auth_method
from oauth.errors import InvalidClientMetadata
from oauth.models import Application, RegistrationNote
from tests.oauth.clients.test_cimd import assert_refused, docs  # noqa: F401 - the local TLS document server fixture

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"


def claude_ai(url: str) -> dict:
    """https://claude.ai/oauth/mcp-oauth-client-metadata, as quoted in sebadob/rauthy#1644."""
    return {"client_id": url, "client_name": "Claude", "client_uri": "https://claude.ai",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": ["authorization_code", "refresh_token", JWT_BEARER],
            "response_types": ["code"], "token_endpoint_auth_method": "none"}


def vs_code(url: str) -> dict:
    """https://vscode.dev/oauth/client-metadata.json, as quoted in tableau/tableau-mcp#199."""
    return {"client_name": "Visual Studio Code", "grant_types": ["authorization_code", "refresh_token", DEVICE_CODE],
            "response_types": ["code"], "token_endpoint_auth_method": "none", "application_type": "native",
            "client_id": url, "client_uri": "https://vscode.dev/product",
            "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"]}


def chatgpt(url: str) -> dict:
    """https://chatgpt.com/oauth/client.json, as quoted in django-oauth/django-oauth-toolkit#1845."""
    return {"client_id": url, "client_uri": "https://chatgpt.com/",
            "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
            "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "client_name": "ChatGPT",
            "logo_uri": "https://persistent.oaistatic.com/sonic/misc/openai-logo.png",
            "token_endpoint_auth_signing_alg": "RS256", "jwks_uri": "https://chatgpt.com/oauth/jwks.json"}


def chatgpt_without_fallback(url: str) -> dict:
    """The earlier ChatGPT document, as quoted in Altinity/altinity-mcp#118: private_key_jwt only."""
    document = chatgpt(url)
    del document["token_endpoint_auth_methods_supported"], document["logo_uri"]
    return document


def serve(docs, make) -> str:  # noqa: F811 - the fixture
    url = docs.url("/client.json")
    docs.serve("/client.json", make(url))
    return url


def fetches(project) -> list[tuple[str, str, str]]:
    return [(n.subject, n.outcome, n.reason) for n in RegistrationNote.recent(project, RegistrationNote.Kind.CIMD_FETCH)]


# -- CIMD documents: narrowed ------------------------------------------------------------------------

def test_it_stores_claude_ai_without_the_jwt_bearer_grant(docs, project_a):  # noqa: F811
    url = serve(docs, claude_ai)
    client = load_client(project_a, url)
    assert client is not None and client.client_type == Application.CLIENT_PUBLIC
    assert client.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert client.metadata["response_types"] == ["code"]
    assert client.allows_grant_type(Application.GRANT_AUTHORIZATION_CODE)
    stored = Application.objects.get(project=project_a, client_id=url)
    # jwt-bearer (ID-JAG) is offered once the project trusts an enterprise issuer (docs/enterprise.md)
    assert stored.narrowed == {"grant_types": [{"value": JWT_BEARER, "reason": "not enabled for this project"}]}
    assert fetches(project_a) == [(url, "ok", f"dropped: grant_types {JWT_BEARER}")]


def test_it_stores_vs_code_with_the_device_code_grant(docs, project_a):  # noqa: F811
    url = serve(docs, vs_code)
    client = load_client(project_a, url)
    assert client is not None
    assert client.metadata["grant_types"] == ["authorization_code", "refresh_token", DEVICE_CODE]
    assert client.allows_grant_type(DEVICE_CODE)
    assert client.metadata["application_type"] == "native"
    assert client.redirect_uris == "http://127.0.0.1:33418/ https://vscode.dev/redirect"
    assert Application.objects.get(pk=client.pk).narrowed == {}


def test_it_stores_vs_code_without_the_device_code_grant_where_the_project_turned_it_off(docs, project_a):  # noqa: F811
    project_a.device_grant = False
    project_a.save()
    url = serve(docs, vs_code)
    client = load_client(project_a, url)
    assert client is not None
    assert client.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert Application.objects.get(pk=client.pk).narrowed == {
        "grant_types": [{"value": DEVICE_CODE, "reason": "not enabled for this project"}]}


def test_an_open_registration_keeps_refresh_tokens_with_the_device_grant_alone(client, project_a):
    response = register(client, {"client_name": "Some CLI", "grant_types": [DEVICE_CODE, "refresh_token"],
                                 "token_endpoint_auth_method": "none"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["grant_types"] == [DEVICE_CODE, "refresh_token"] and body["response_types"] == []
    stored = Application.objects.get(project=project_a, client_id=body["client_id"])
    assert stored.narrowed == {} and stored.client_type == Application.CLIENT_PUBLIC


def test_an_open_registration_for_the_device_grant_alone_is_refused_where_it_is_off(client, project_a):
    project_a.device_grant = False
    project_a.save()
    response = register(client, {"client_name": "Some CLI", "grant_types": [DEVICE_CODE, "refresh_token"],
                                 "token_endpoint_auth_method": "none"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert response.json()["error_description"].startswith("grant_types: none of the requested grant types")
    assert not Application.objects.filter(project=project_a).exists()


def test_it_takes_chatgpts_listed_fallback_when_private_key_jwt_is_not_offered(docs, project_a):  # noqa: F811
    url = serve(docs, chatgpt)
    client = load_client(project_a, url)
    assert client is not None
    if "private_key_jwt" in SUPPORTED_AUTH_METHODS:  # once RFC 7523 client authentication is registered
        assert client.metadata["token_endpoint_auth_method"] == "private_key_jwt"
    else:
        assert client.metadata["token_endpoint_auth_method"] == "none"
        assert client.client_type == Application.CLIENT_PUBLIC
        assert Application.objects.get(pk=client.pk).narrowed == {"token_endpoint_auth_method": [
            {"value": "private_key_jwt", "reason": "not supported by this server"}]}


def test_it_refuses_a_document_listing_only_unsupported_grants_and_names_the_field(docs, project_a):  # noqa: F811
    url = docs.url("/client.json")
    docs.serve("/client.json", {**claude_ai(url), "grant_types": ["password", JWT_BEARER], "response_types": []})
    assert_refused(project_a, url)
    [(subject, outcome, reason)] = fetches(project_a)
    assert (subject, outcome) == (url, "refused")
    assert reason.startswith("the document's metadata is invalid: invalid_client_metadata: grant_types: none of the "
                             "requested grant types")


def test_it_refuses_a_document_whose_only_method_needs_a_secret(docs, project_a):  # noqa: F811
    url = serve(docs, lambda u: {**claude_ai(u), "token_endpoint_auth_method": "client_secret_basic"})
    assert_refused(project_a, url)
    [(_, outcome, reason)] = fetches(project_a)
    assert outcome == "refused" and reason.startswith(
        "the document's metadata is invalid: invalid_client_metadata: token_endpoint_auth_method:")


# -- the auth method decision, with and without private_key_jwt registered ---------------------------
WITH_PRIVATE_KEY_JWT = dict(SUPPORTED_AUTH_METHODS)
WITHOUT_PRIVATE_KEY_JWT = {name: m for name, m in SUPPORTED_AUTH_METHODS.items() if name != "private_key_jwt"}
URL = "https://chatgpt.com/oauth/client.json"


@pytest.mark.parametrize("make", [chatgpt, chatgpt_without_fallback])
def test_it_keeps_private_key_jwt_when_registered_and_the_document_has_keys(make):
    assert narrow_auth_method(make(URL), Policy.for_path("cimd"), WITH_PRIVATE_KEY_JWT) == ("private_key_jwt", [])


def test_it_falls_back_to_a_listed_method_when_private_key_jwt_is_not_registered():
    method, dropped = narrow_auth_method(chatgpt(URL), Policy.for_path("cimd"), WITHOUT_PRIVATE_KEY_JWT)
    assert method == "none"
    assert dropped == [{"value": "private_key_jwt", "reason": "not supported by this server"}]


def test_it_falls_back_when_private_key_jwt_has_no_keys():
    document = {k: v for k, v in chatgpt(URL).items() if k != "jwks_uri"}
    method, dropped = narrow_auth_method(document, Policy.for_path("cimd"), WITH_PRIVATE_KEY_JWT)
    assert method == "none"
    assert dropped == [{"value": "private_key_jwt", "reason": "needs jwks or jwks_uri"}]


def test_it_refuses_a_document_with_no_usable_method_and_names_the_field():
    with pytest.raises(InvalidClientMetadata, match="^token_endpoint_auth_method: not supported"):
        narrow_auth_method(chatgpt_without_fallback(URL), Policy.for_path("cimd"), WITHOUT_PRIVATE_KEY_JWT)


def test_it_gives_an_open_dcr_client_the_default_method_when_it_lists_none_usable():
    body = {"token_endpoint_auth_method": "private_key_jwt"}  # no keys: unusable even when registered
    assert narrow_auth_method(body, Policy.for_path("open"), WITH_PRIVATE_KEY_JWT) == (
        "none", [{"value": "private_key_jwt", "reason": "needs jwks or jwks_uri"}])


# -- recent CIMD fetches -------------------------------------------------------------------------------

def test_it_notes_a_404_fetch(docs, project_a):  # noqa: F811
    url = docs.url("/missing.json")
    assert load_client(project_a, url) is None
    assert fetches(project_a) == [(url, "HTTP 404", f"this client's metadata document could not be fetched: HTTP 404 from {url}")]


def test_it_notes_a_timeout(docs, project_a):  # noqa: F811
    url = docs.url("/slow.json")
    assert load_client(project_a, url) is None
    assert fetches(project_a) == [
        (url, "timeout", f"this client's metadata document could not be fetched: the server did not answer in time ({url})")]


def test_it_notes_a_private_address_without_naming_it(docs, project_a, settings):  # noqa: F811
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    url = serve(docs, claude_ai).replace("127.0.0.1", "localhost")
    assert load_client(project_a, url) is None
    assert fetches(project_a) == [
        (url, "refused", f"this client's metadata document could not be fetched: the address is not allowed ({url})")]


def test_it_notes_an_invalid_document_without_its_body(docs, project_a):  # noqa: F811
    url = docs.serve("/client.json", b'{"secret-ish body": ')
    assert load_client(project_a, url) is None
    assert fetches(project_a) == [(url, "refused", f"this client's metadata document is not valid JSON, at {url}")]


def test_it_notes_only_real_fetches_not_cache_hits(docs, project_a, project_b):  # noqa: F811
    url = serve(docs, claude_ai)
    load_client(project_a, url)
    load_client(project_a, url)
    load_client(project_b, url)  # served from the shared document cache: project B saw no fetch
    assert [outcome for _, outcome, _ in fetches(project_a)] == ["ok"]
    assert fetches(project_b) == []


def test_it_keeps_only_the_newest_notes_of_each_kind_per_project(project_a, project_b):
    for i in range(RegistrationNote.KEEP + 5):
        RegistrationNote.record(project_a, RegistrationNote.Kind.CIMD_FETCH, subject=f"https://c.example/{i}",
                                outcome="HTTP 404")
    RegistrationNote.record(project_a, RegistrationNote.Kind.REFUSAL, outcome="invalid_client_metadata")
    RegistrationNote.record(project_b, RegistrationNote.Kind.CIMD_FETCH, subject="https://b.example/", outcome="ok")
    kept = RegistrationNote.objects.filter(project=project_a, kind=RegistrationNote.Kind.CIMD_FETCH)
    assert kept.count() == RegistrationNote.KEEP
    assert {n.subject for n in kept} == {f"https://c.example/{i}" for i in range(5, RegistrationNote.KEEP + 5)}
    assert RegistrationNote.objects.filter(project=project_a, kind=RegistrationNote.Kind.REFUSAL).count() == 1
    assert RegistrationNote.objects.filter(project=project_b).count() == 1


# -- registration refusals -----------------------------------------------------------------------------

def register(client, body, slug="alpha"):
    return client.post(f"/p/{slug}/api/oauth/register", data=json.dumps(body), content_type="application/json")


def test_it_notes_a_refused_registration_with_its_reason(client, project_a, project_b):
    body = {"client_name": "Gadget", "redirect_uris": ["https://app.example/cb"], "grant_types": [JWT_BEARER]}
    response = register(client, body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
    [note] = RegistrationNote.recent(project_a, RegistrationNote.Kind.REFUSAL)
    assert (note.subject, note.outcome, note.reason) == ("Gadget", "invalid_client_metadata",
                                                         response.json()["error_description"])
    assert not RegistrationNote.objects.filter(project=project_b).exists()


def test_it_notes_a_refusal_whose_client_name_could_not_be_stored_as_is(client, project_a):
    response = register(client, {"client_name": "evil\nname", "redirect_uris": ["https://app.example/cb"]})
    assert response.status_code == 400
    [note] = RegistrationNote.recent(project_a, RegistrationNote.Kind.REFUSAL)
    assert note.subject == "evil?name"


def test_it_does_not_note_a_successful_registration(client, project_a):
    body = {"client_name": "VS Code", "redirect_uris": ["http://127.0.0.1:33418/"],
            "grant_types": ["authorization_code", "refresh_token", DEVICE_CODE]}
    assert register(client, body).status_code == 201
    assert not RegistrationNote.objects.filter(project=project_a).exists()


# -- the dashboard ---------------------------------------------------------------------------------------

@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def test_the_client_page_shows_what_was_dropped_and_why(docs, as_alice, project_a):  # noqa: F811
    url = serve(docs, claude_ai)
    client = load_client(project_a, url)
    page = as_alice.get(f"/projects/alpha/clients/{client.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dropped from the request" in html
    assert f"<code>{JWT_BEARER}</code>" in html and "not enabled for this project" in html


def test_the_client_page_shows_no_dropped_section_when_nothing_was_dropped(as_alice, public_client_a):
    page = as_alice.get(f"/projects/alpha/clients/{public_client_a.pk}")
    assert page.status_code == 200
    assert "Dropped from the request" not in page.content.decode()


def test_the_dashboard_lists_recent_fetches_and_refusals(docs, as_alice, project_a):  # noqa: F811
    missing = docs.url("/missing.json")
    load_client(project_a, missing)
    register(as_alice, {"client_name": "Gadget", "redirect_uris": ["https://app.example/cb"], "response_types": ["token"]})
    page = as_alice.get("/projects/alpha/clients/registrations")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"<code>{missing}</code>" in html and "HTTP 404" in html
    assert "Gadget" in html and "invalid_client_metadata" in html
    assert "response_types: authorization_code needs the code response type." in html


def test_the_list_is_the_projects_own(docs, client, bob, project_a, project_b):  # noqa: F811
    load_client(project_a, docs.url("/missing.json"))
    client.force_login(bob)
    assert client.get("/projects/alpha/clients/registrations").status_code == 404
    page = client.get("/projects/bravo/clients/registrations")
    assert page.status_code == 200
    assert "missing.json" not in page.content.decode()


# -- one list of grants --------------------------------------------------------------------------------

def test_the_token_endpoint_discovery_and_registration_read_the_same_grants(client, project_a):
    from oauth.grants import GRANTS
    from oauth.server import Server
    from oauth.validator import Validator

    registry = [grant.grant_type for grant in GRANTS]
    assert sorted(Server(Validator()).grant_types) == sorted(registry)
    metadata = client.get("/p/alpha/.well-known/oauth-authorization-server").json()
    # every grant the project has switched on (jwt-bearer: once it trusts an enterprise issuer)
    assert metadata["grant_types_supported"] == [g.grant_type for g in GRANTS if g.enabled(project_a)]
    assert metadata["grant_types_supported"] == [g for g in registry if g != JWT_BEARER]
    assert metadata["token_endpoint_auth_methods_supported"] == list(SUPPORTED_AUTH_METHODS)


def test_createclient_takes_every_extra_grant_of_the_registry(project_a):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("createclient", "--project", "alpha", "--name", "Exchanger", "--confidential",
                 "--redirect-uri", "https://app.example/cb",
                 "--grant", "urn:ietf:params:oauth:grant-type:token-exchange", "--json", stdout=out)
    stored = Application.objects.get(project=project_a, client_id=json.loads(out.getvalue())["client_id"])
    assert stored.metadata["grant_types"] == ["authorization_code", "refresh_token",
                                              "urn:ietf:params:oauth:grant-type:token-exchange"]
    assert stored.narrowed == {}


def test_it_finds_the_last_fetch_of_a_url_for_an_error_page(docs, project_a, project_b):  # noqa: F811
    from oauth.clients.cimd import last_fetch

    url = docs.url("/missing.json")
    load_client(project_a, url)
    assert load_client(project_a, url) is None  # backed off: not fetched again
    note = last_fetch(project_a, url)
    assert (note.outcome, note.reason) == ("HTTP 404", f"this client's metadata document could not be fetched: HTTP 404 from {url}")
    assert last_fetch(project_b, url) is None
