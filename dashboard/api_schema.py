"""The OAuth endpoints of every issuer (API.md), added to the OpenAPI schema drf-spectacular builds.

They are function views outside DRF, so drf-spectacular cannot see them; this hook describes them
from the contract so `/docs/endpoints` covers the whole service.
"""

import re

SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "The project's slug: the issuer is `{PUBLIC_URL}/p/{slug}`."}
ERROR = {"$ref": "#/components/schemas/OAuthError"}
JSON_OBJECT = {"type": "object", "additionalProperties": True}
FORM = "application/x-www-form-urlencoded"


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, rfc: str, *, tag: str = "oauth", body: str | None = None, responses=None,
        params: list | None = None, security: list | None = None) -> dict:
    op = {"tags": [tag], "summary": summary, "description": rfc, "parameters": [SLUG, *(params or [])],
          "responses": responses or {"200": _json(JSON_OBJECT, "OK"), "400": _json(ERROR, "Bad request")}}
    if body:
        op["requestBody"] = {"required": True, "content": {body: {"schema": JSON_OBJECT}}}
        # oauth.endpoints.parsing, docs/requests.md: refused before the endpoint reads the body.
        op["responses"].setdefault("413", _json(ERROR, "The body is over the endpoint's limit"))
        op["responses"].setdefault("415", _json(ERROR, f"The body is not {body}"))
    op["security"] = security if security is not None else []
    return op


def _query(name: str, required: bool = False, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"},
            "description": description}


SECRET = [{"projectSecret": []}]
ENDPOINTS = {
    "/p/{slug}/.well-known/oauth-authorization-server": {"get": _op(
        "Authorization server metadata", "RFC 8414. Also at `/.well-known/oauth-authorization-server/p/{slug}`.",
        tag="discovery", responses={"200": _json(JSON_OBJECT, "Metadata"), "404": _json(ERROR, "No such project")})},
    "/p/{slug}/.well-known/openid-configuration": {"get": _op(
        "OpenID discovery form of the same metadata", "OpenID Connect Discovery 1.0.", tag="discovery")},
    "/p/{slug}/.well-known/jwks.json": {"get": _op(
        "Public signing keys", "RFC 7517 JWK Set (ES256).", tag="discovery")},
    "/p/{slug}/api/oauth/register": {"post": _op(
        "Register a client", "RFC 7591. Open (no Authorization) or with a project secret holding `register`.",
        tag="registration", body="application/json", security=[{}, *SECRET],
        responses={"201": _json(JSON_OBJECT, "Client metadata with client_id"),
                   "400": _json(ERROR, "invalid_redirect_uri / invalid_client_metadata"),
                   "401": _json(ERROR, "invalid_token"), "429": _json(ERROR, "Too many registrations")})},
    "/p/{slug}/api/oauth/register/{client_id}": {
        method: _op(f"{verb} a registered client", "RFC 7592, with the registration access token.",
                    tag="registration", body="application/json" if method == "put" else None,
                    params=[{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    security=[{"registrationAccessToken": []}])
        for method, verb in (("get", "Read"), ("put", "Update"), ("delete", "Delete"))
    },
    "/p/{slug}/oauth/authorize": {"get": _op(
        "Authorization endpoint", "OAuth 2.1 authorization code with PKCE S256; RFC 8707 `resource`; RFC 9207 `iss`.",
        params=[_query("response_type", True, "`code`"), _query("client_id", True), _query("redirect_uri", True),
                _query("code_challenge", True), _query("code_challenge_method", True, "`S256`"),
                _query("state"), _query("scope"), _query("resource"), _query("prompt")],
        responses={"302": {"description": "Redirect with code, state, iss (or error)"},
                   "400": {"description": "Invalid client_id or redirect_uri: an error page"}})},
    "/p/{slug}/oauth/token": {"post": _op(
        "Token endpoint", "authorization_code, refresh_token, client_credentials, RFC 8693 token exchange, "
        "RFC 8628 device_code, RFC 7523 jwt-bearer with an ID-JAG (docs/enterprise.md).",
        body=FORM, responses={"200": _json(JSON_OBJECT, "Token response"), "400": _json(ERROR, "invalid_grant, ..."),
                              "401": _json(ERROR, "invalid_client")})},
    "/p/{slug}/oauth/device_authorization": {"post": _op(
        "Device authorization", "RFC 8628 §3.1: device_code, user_code (XXXX-XXXX), verification URIs, expires_in, "
        "interval; when the project offers the grant.",
        body=FORM, responses={"200": _json(JSON_OBJECT, "Device authorization response"),
                              "400": _json(ERROR, "unauthorized_client, invalid_scope, ..."),
                              "401": _json(ERROR, "invalid_client")})},
    "/p/{slug}/oauth/revoke": {"post": _op("Revoke a token", "RFC 7009.", body=FORM)},
    "/p/{slug}/oauth/revocations": {"get": _op(
        "Revocation feed", "The `jti`s of revoked JWT access tokens after `since`, oldest first (at most 1000; "
        "continue with `next`): `{\"revoked\": [{\"jti\", \"revoked_at\", \"exp\"}], \"next\"}`. "
        "Project secret with `introspect`.", tag="mcpauth", security=SECRET,
        params=[_query("since", description="the `next` of the previous answer; omitted: from the oldest entry kept")],
        responses={"200": _json(JSON_OBJECT, "Revoked JWTs and the next cursor"),
                   "400": _json(ERROR, "invalid_request (a bad cursor)"), "401": _json(ERROR, "invalid_token")})},
    "/p/{slug}/oauth/introspect": {"post": _op(
        "Introspect a token", "RFC 7662. Client authentication or a project secret holding `introspect`.",
        body=FORM, security=[{"clientBasic": []}, *SECRET])},
    "/p/{slug}/api/oauth/introspect": {"post": _op(
        "Introspect (mcpauth-compatible alias)", "RFC 7662 with a project secret holding `introspect`.",
        tag="mcpauth", body=FORM, security=SECRET)},
    "/p/{slug}/api/oauth/token/exchange": {"post": _op(
        "Mint tokens for a trusted subject", "mcpauth token exchange; project secret with `exchange`.",
        tag="mcpauth", body="application/json", security=SECRET)},
    "/p/{slug}/api/oauth/authorization-requests/{id}": {"get": _op(
        "Login handoff: the pending request", "Project secret with `handoff`.", tag="handoff", security=SECRET,
        params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])},
    "/p/{slug}/api/oauth/authorization-requests/{id}/complete": {"post": _op(
        "Login handoff: vouch for a subject", "Returns `{\"redirect_to\": ...}`.", tag="handoff",
        body="application/json", security=SECRET,
        params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])},
    "/p/{slug}/api/oauth/authorization-requests/{id}/deny": {"post": _op(
        "Login handoff: refuse", "The browser is sent back with `access_denied`.", tag="handoff",
        security=SECRET, params=[{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])},
}

SCHEMES = {
    "projectSecret": {"type": "http", "scheme": "bearer", "description": "A project secret `mcps_…`"},
    "registrationAccessToken": {"type": "http", "scheme": "bearer", "description": "RFC 7592 registration token"},
    "clientBasic": {"type": "http", "scheme": "basic", "description": "client_id and client_secret"},
}


def add_oauth_endpoints(result, generator, request, public):
    """drf-spectacular postprocessing hook: the OAuth endpoints and the security schemes."""
    paths = result.setdefault("paths", {})
    for path, item in ENDPOINTS.items():
        for method, operation in item.items():
            words = re.sub(r"[^a-z0-9]+", "_", path.removeprefix("/p/{slug}/").lower()).strip("_")
            operation["operationId"] = f"{method}_{words}"
        paths[path] = item
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["OAuthError"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
    components.setdefault("securitySchemes", {}).update(SCHEMES)
    return result
