"""RFC 7591 §2 client metadata: each validation rule answers its RFC 7591 §3.2.2 error, writes nothing."""

import json

import pytest

from oauth.models import Application

URL_A = "/p/alpha/api/oauth/register"
BASE = {"client_name": "MCP client", "redirect_uris": ["https://app.example/callback"],
        "token_endpoint_auth_method": "none"}


def register(client, body, secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(URL_A, data=json.dumps(body), content_type="application/json", **headers)


def assert_refused(response, error):
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert Application.objects.count() == 0


# -- redirect_uris -------------------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "https://app.example/callback",
    "https://app.example:8443/cb?tenant=1",
    "http://127.0.0.1/callback",
    "http://127.0.0.1:33418/callback",
    "http://[::1]:8080/callback",
    "http://localhost:6274/oauth/callback",
    "com.example.app:/oauth2redirect",
    "cursor.app:/oauth/callback",
    "com.example.app://host/callback",                 # private-use with an authority
    "cursor://anysphere.cursor-mcp/oauth/callback",    # single-word private-use schemes (API.md)
    "vscode://vscode.github-authentication/did-authenticate",
    "claude://claude.ai/oauth/callback",
    "myapp:/callback",
    "https://xn--pple-43d.example/cb",                 # an IDN, as punycode
])
def test_it_accepts_the_redirect_uris_api_md_allows(client, project_a, uri):
    response = register(client, {**BASE, "redirect_uris": [uri]})
    assert response.status_code == 201
    assert response.json()["redirect_uris"] == [uri]
    assert Application.objects.get(project=project_a).redirect_uris == uri


@pytest.mark.parametrize("uri", [
    "http://app.example/callback",          # plain http off loopback
    "http://127.0.0.2.example/callback",
    "https://app.example/callback#frag",    # fragment (RFC 6749 §3.1.2)
    "https://app.example/callback#",
    "https://*.app.example/callback",       # wildcard
    "https://app.example/*",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,hi",
    "file:///etc/passwd",
    "vbscript:msgbox(1)",
    "about:blank",
    "blob:https://app.example/0b1c",
    "ftp://app.example/cb",
    "cursor:",                              # nothing after the scheme
    "https://аpp.example/cb",               # an IDN not written as punycode
    "HTTP://127.0.0.1/cb",                  # loopback http is matched as written: lower case
    "https:///no-host",
    "https://user:pass@app.example/cb",     # credentials
    "https://app.example/has space",
    "",
    "https://app.example:99999/cb",
    "https://" + "a" * 2100 + ".example/cb",
])
def test_it_refuses_redirect_uris_api_md_forbids(client, project_a, uri):
    assert_refused(register(client, {**BASE, "redirect_uris": [uri]}), "invalid_redirect_uri")


@pytest.mark.parametrize("value", ["https://app.example/cb", [1], [None], {"a": 1}])
def test_it_refuses_redirect_uris_that_are_not_an_array_of_strings(client, project_a, value):
    assert_refused(register(client, {**BASE, "redirect_uris": value}), "invalid_redirect_uri")


def test_it_requires_redirect_uris_for_the_code_grant(client, project_a):
    body = {k: v for k, v in BASE.items() if k != "redirect_uris"}
    assert_refused(register(client, body), "invalid_redirect_uri")


def test_it_refuses_too_many_redirect_uris(client, project_a):
    uris = [f"https://app.example/cb{i}" for i in range(21)]
    assert_refused(register(client, {**BASE, "redirect_uris": uris}), "invalid_redirect_uri")


# -- grant_types and response_types: narrowed, refused only when nothing usable remains ----------------
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_it_keeps_the_grants_vs_code_registers_with(client, project_a):
    """VS Code's DCR body lists device_code (PrefectHQ/fastmcp#1868 quotes it): offered (RFC 8628)."""
    body = {"client_name": "Visual Studio Code", "client_uri": "https://code.visualstudio.com",
            "grant_types": ["authorization_code", "refresh_token", DEVICE_CODE], "response_types": ["code"],
            "redirect_uris": ["https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                              "http://localhost/", "http://127.0.0.1/", "http://localhost:33418/",
                              "http://127.0.0.1:33418/"],
            "token_endpoint_auth_method": "none", "application_type": "native"}
    response = register(client, body)
    assert response.status_code == 201
    assert response.json()["grant_types"] == ["authorization_code", "refresh_token", DEVICE_CODE]
    assert response.json()["response_types"] == ["code"]
    app = Application.objects.get(project=project_a)
    assert app.metadata["grant_types"] == ["authorization_code", "refresh_token", DEVICE_CODE]
    assert app.narrowed == {}


@pytest.mark.parametrize("extra,reason", [
    (JWT_BEARER, "not enabled for this project"),  # until the project trusts an enterprise issuer
    ("implicit", "removed in OAuth 2.1"),
    ("password", "removed in OAuth 2.1"),
    ("client_credentials", "needs registration with a project secret"),
    ("urn:ietf:params:oauth:grant-type:token-exchange", "needs registration with a project secret"),
])
def test_it_drops_each_grant_this_client_may_not_have(client, project_a, extra, reason):
    response = register(client, {**BASE, "grant_types": ["authorization_code", extra, "refresh_token"]})
    assert response.status_code == 201
    assert response.json()["grant_types"] == ["authorization_code", "refresh_token"]
    assert Application.objects.get(project=project_a).narrowed == {"grant_types": [{"value": extra, "reason": reason}]}


def test_it_drops_refresh_token_without_the_code_grant_for_a_machine_client(client, project_a):
    body = {"client_name": "Cron", "grant_types": ["client_credentials", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic"}
    response = register(client, body, secret=project_a.registration_secret)
    assert response.status_code == 201
    assert response.json()["grant_types"] == ["client_credentials"]
    assert Application.objects.get(project=project_a).narrowed == {
        "grant_types": [{"value": "refresh_token", "reason": f"only issued with authorization_code or {DEVICE_CODE}"}]}


@pytest.mark.parametrize("grants", [["implicit"], ["password"], [JWT_BEARER], ["password", JWT_BEARER],
                                    ["refresh_token"], []])
def test_it_refuses_when_no_requested_grant_is_usable(client, project_a, grants):
    response = register(client, {**BASE, "grant_types": grants})
    assert_refused(response, "invalid_client_metadata")
    assert response.json()["error_description"].startswith("grant_types:")


@pytest.mark.parametrize("grants", ["authorization_code", [7], {"a": 1}])
def test_it_refuses_grant_types_that_are_not_an_array_of_strings(client, project_a, grants):
    assert_refused(register(client, {**BASE, "grant_types": grants}), "invalid_client_metadata")


@pytest.mark.parametrize("types,dropped", [
    (["code", "token"], [{"value": "token", "reason": "only the code response type is supported"}]),
    (["code id_token", "code"], [{"value": "code id_token", "reason": "only the code response type is supported"}]),
    (["id_token", "code", "token"], [{"value": "id_token", "reason": "only the code response type is supported"},
                                     {"value": "token", "reason": "only the code response type is supported"}]),
])
def test_it_narrows_response_types_to_code(client, project_a, types, dropped):
    response = register(client, {**BASE, "response_types": types})
    assert response.status_code == 201
    assert response.json()["response_types"] == ["code"]
    app = Application.objects.get(project=project_a)
    assert app.metadata["response_types"] == ["code"]
    assert app.narrowed == {"response_types": dropped}


@pytest.mark.parametrize("types", [["token"], ["id_token"], []])
def test_it_refuses_the_code_grant_without_the_code_response_type(client, project_a, types):
    response = register(client, {**BASE, "response_types": types})
    assert_refused(response, "invalid_client_metadata")
    assert response.json()["error_description"].startswith("response_types:")


def test_it_refuses_response_types_that_are_not_an_array(client, project_a):
    assert_refused(register(client, {**BASE, "response_types": "code"}), "invalid_client_metadata")


def test_it_drops_the_code_response_type_of_a_client_without_the_code_grant(client, project_a):
    body = {**BASE, "grant_types": ["client_credentials"], "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic"}
    response = register(client, body, secret=project_a.registration_secret)
    assert response.status_code == 201
    assert response.json()["response_types"] == []
    assert Application.objects.get(project=project_a).narrowed == {
        "response_types": [{"value": "code", "reason": "goes only with the authorization_code grant"}]}


def test_it_refuses_client_credentials_for_a_public_client_even_with_a_secret(client, project_a):
    body = {**BASE, "grant_types": ["client_credentials"], "response_types": []}
    response = register(client, body, secret=project_a.registration_secret)
    assert_refused(response, "invalid_client_metadata")
    assert "grant_types" in response.json()["error_description"]


# -- token_endpoint_auth_method: narrowed to one this client can use -------------------------------

@pytest.mark.parametrize("method", ["client_secret_jwt", "tls_client_auth", "self_signed_tls_client_auth", ""])
def test_it_replaces_an_unsupported_auth_method_with_the_secret_default(client, project_a, method):
    response = register(client, {**BASE, "token_endpoint_auth_method": method}, secret=project_a.registration_secret)
    assert response.status_code == 201
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert Application.objects.get(project=project_a).client_type == Application.CLIENT_CONFIDENTIAL
    assert Application.objects.get(project=project_a).narrowed == {
        "token_endpoint_auth_method": [{"value": method, "reason": "not supported by this server"}]}


def test_it_takes_the_clients_own_fallback_over_the_default(client, project_a):
    """ChatGPT lists `none` next to private_key_jwt (django-oauth/django-oauth-toolkit#1845 quotes it); a
    request for private_key_jwt without jwks or jwks_uri cannot keep it, and falls back to `none`."""
    body = {**BASE, "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"]}
    response = register(client, body, secret=project_a.registration_secret)
    assert response.status_code == 201
    assert response.json()["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in response.json()
    assert Application.objects.get(project=project_a).client_type == Application.CLIENT_PUBLIC


@pytest.mark.parametrize("method", [1, ["none"], {"a": "b"}])
def test_it_refuses_an_auth_method_that_is_not_a_string(client, project_a, method):
    assert_refused(register(client, {**BASE, "token_endpoint_auth_method": method},
                            secret=project_a.registration_secret), "invalid_client_metadata")


# -- scope -------------------------------------------------------------------------------------------

def test_it_accepts_scopes_of_the_catalog(client, project_a):
    response = register(client, {**BASE, "scope": "mcp:tools offline_access mcp:tools"})
    assert response.status_code == 201
    assert response.json()["scope"] == "mcp:tools offline_access"


@pytest.mark.parametrize("scope", ["admin", "mcp:tools admin", ["mcp:tools"], 3])
def test_it_refuses_scopes_outside_the_catalog(client, project_a, scope):
    assert_refused(register(client, {**BASE, "scope": scope}), "invalid_client_metadata")


def test_it_judges_scope_against_the_project_of_the_url(client, project_a, project_b):
    project_b.scopes = [{"name": "files:read", "description": ""}]
    project_b.save()
    ok = client.post("/p/bravo/api/oauth/register", data=json.dumps({**BASE, "scope": "files:read"}),
                     content_type="application/json")
    assert ok.status_code == 201
    refused = register(client, {**BASE, "scope": "files:read"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert not Application.objects.filter(project=project_a).exists()


# -- descriptive fields -----------------------------------------------------------------------------

def test_it_keeps_the_descriptive_fields(client, project_a):
    body = {**BASE, "client_uri": "https://app.example", "logo_uri": "https://app.example/logo.png",
            "tos_uri": "https://app.example/tos", "policy_uri": "https://app.example/privacy",
            "software_id": "4NRB1-0XZABZI9E6-5SM3R", "software_version": "2.1",
            "contacts": ["admin@app.example"]}
    response = register(client, body)
    assert response.status_code == 201
    stored = Application.objects.get(project=project_a).metadata
    for name in ("client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id", "software_version", "contacts"):
        assert response.json()[name] == body[name]
        assert stored[name] == body[name]


@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "tos_uri", "policy_uri"])
@pytest.mark.parametrize("value", ["http://app.example", "javascript:alert(1)", "https://", "not a url",
                                   "https://app.example/" + "x" * 2001, 42])
def test_it_refuses_descriptive_uris_that_are_not_short_https_urls(client, project_a, name, value):
    assert_refused(register(client, {**BASE, name: value}), "invalid_client_metadata")


@pytest.mark.parametrize("field,value", [
    ("client_name", "x" * 201), ("client_name", 5), ("client_name", "evil\nname"),
    ("software_id", "x" * 201), ("software_id", ["a"]),
    ("software_version", "x" * 101), ("software_version", 2),
    ("contacts", "admin@app.example"), ("contacts", [1]), ("contacts", [f"a{i}@b.example" for i in range(11)]),
    ("contacts", ["x" * 321]),
])
def test_it_refuses_descriptive_fields_of_the_wrong_type_or_length(client, project_a, field, value):
    assert_refused(register(client, {**BASE, field: value}), "invalid_client_metadata")


# -- application_type ---------------------------------------------------------------------------------

def test_it_infers_web_for_https_redirects(client, project_a):
    assert register(client, BASE).json()["application_type"] == "web"


def test_it_infers_native_for_private_use_schemes(client, project_a):
    response = register(client, {**BASE, "redirect_uris": ["com.example.app:/cb"]})
    assert response.json()["application_type"] == "native"


def test_it_infers_native_for_a_device_only_client(client, project_a):
    # No redirect URI to go by: a client that only polls for device codes runs on the person's device.
    body = {"client_name": "TV app", "grant_types": [DEVICE_CODE], "token_endpoint_auth_method": "none"}
    response = register(client, body)
    assert response.status_code == 201
    assert response.json()["application_type"] == "native"
    assert Application.objects.get(project=project_a).metadata["application_type"] == "native"


def test_it_keeps_a_private_use_scheme_of_a_web_application(client, project_a):
    # Cursor registers application_type "web" with its cursor:// URI; matching is exact either way.
    body = {**BASE, "application_type": "web", "redirect_uris": ["com.example.app:/cb"]}
    response = register(client, body)
    assert response.status_code == 201
    assert response.json()["application_type"] == "web"
    assert response.json()["redirect_uris"] == ["com.example.app:/cb"]


@pytest.mark.parametrize("value", ["service", "", 1])
def test_it_refuses_unknown_application_types(client, project_a, value):
    assert_refused(register(client, {**BASE, "application_type": value}), "invalid_client_metadata")


def test_it_accepts_a_native_app_with_https_and_loopback(client, project_a):
    body = {**BASE, "application_type": "native",
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"]}
    assert register(client, body).status_code == 201


# -- unknown fields ------------------------------------------------------------------------------------

def test_it_ignores_unknown_fields(client, project_a):
    response = register(client, {**BASE, "x_custom": {"deep": [1, 2]}, "client_name#ja": "名前",
                                 "jwks_uri": "https://app.example/jwks"})
    assert response.status_code == 201
    body = response.json()
    assert "x_custom" not in body and "client_name#ja" not in body and "jwks_uri" not in body
    assert "x_custom" not in Application.objects.get(project=project_a).metadata


def test_it_accepts_a_redirect_uri_at_the_length_cap(client, project_a):
    uri = "https://app.example/" + "p" * (2000 - len("https://app.example/"))
    assert register(client, {**BASE, "redirect_uris": [uri]}).status_code == 201


def test_it_lets_the_toolkit_match_private_use_redirects_exactly(client, project_a):
    register(client, {**BASE, "redirect_uris": ["com.example.app:/cb", "http://127.0.0.1/cb", "cursor://a.b/cb"]})
    app = Application.objects.get(project=project_a)
    app.full_clean(exclude=["client_secret"], validate_unique=False)  # the toolkit's own model checks agree
    assert app.redirect_uri_allowed("com.example.app:/cb")
    assert app.redirect_uri_allowed("http://127.0.0.1:49152/cb")  # loopback: any port (RFC 8252 §7.3)
    assert not app.redirect_uri_allowed("com.example.app:/other")
    assert not app.redirect_uri_allowed("com.evil.app:/cb")
    assert app.redirect_uri_allowed("cursor://a.b/cb") and not app.redirect_uri_allowed("cursor://A.b/cb")
