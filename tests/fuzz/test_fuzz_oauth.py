"""Hypothesis-generated requests against every OAuth endpoint (API.md "Errors").

Forms, JSON, raw bytes, query strings and headers, with live-looking values (this project's client
ids, a secret, a live code and its verifier, registered redirect URIs, token-shaped strings) mixed
with huge and odd ones (NUL, lone surrogates, 70 KB strings), repeated parameters and odd media
types. Every answer: no 5xx; an error is the RFC's JSON shape; a refused request writes nothing.
Budget: `tests/fuzz_support.py` (HYPOTHESIS_PROFILE=ci by default, `make fuzz` for the long run).
"""

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_support import assert_error_shape, rows
from tests.token_support import make_code

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

NAMES = ["grant_type", "code", "code_verifier", "redirect_uri", "client_id", "client_secret", "refresh_token",
         "scope", "resource", "token", "token_type_hint", "subject_token", "subject_token_type",
         "requested_token_type", "actor_token", "audience", "state", "response_type", "code_challenge",
         "code_challenge_method", "prompt", "subject", "scopes", "claims", "client_name", "redirect_uris",
         "grant_types", "token_endpoint_auth_method", "software_version", "jwks", "client_assertion", "assertion",
         "device_code", "user_code"]
GRANTS = ["authorization_code", "refresh_token", "client_credentials",
          "urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:grant-type:device_code",
          "urn:ietf:params:oauth:grant-type:jwt-bearer",
          "password", "implicit"]
ODD = ["", " ", "\x00", "a\x00b", "\ud800", "\udfff x", "é", "%00", "%ff", "\r\n", "null", "[]", "{}", "'",
       "\\", "../../", "x" * 5000, "x" * 70_000, "https://APP.example/cb", "javascript:alert(1)",
       "http://127.0.0.1:1/callback", "urn:ietf:params:oauth:token-type:access_token"]
MEDIA_TYPES = ["application/x-www-form-urlencoded", "application/json", "application/json; charset=utf-8",
               "application/x-www-form-urlencoded; charset=latin-1", "text/plain", "multipart/form-data",
               "multipart/form-data; boundary=x", "application/xml", "", "application/json; charset=utf-16",
               "*/*", "application/x-www-form-urlencoded;charset"]

# (method, path under the issuer, what its body is)
ENDPOINTS = [
    ("POST", "oauth/token", "form"),
    ("POST", "oauth/device_authorization", "form"),
    ("POST", "oauth/revoke", "form"),
    ("POST", "oauth/introspect", "form"),
    ("POST", "api/oauth/introspect", "form"),
    ("POST", "api/oauth/register", "json"),
    ("GET", "api/oauth/register/{client_id}", None),
    ("PUT", "api/oauth/register/{client_id}", "json"),
    ("DELETE", "api/oauth/register/{client_id}", None),
    ("POST", "api/oauth/token/exchange", "json"),
    ("GET", "api/oauth/authorization-requests/{request_id}", None),
    ("POST", "api/oauth/authorization-requests/{request_id}/complete", "json"),
    ("POST", "api/oauth/authorization-requests/{request_id}/deny", "json"),
    ("GET", ".well-known/oauth-authorization-server", None),
    ("GET", ".well-known/jwks.json", None),
]


@pytest.fixture
def live(project_a, public_client_a, confidential_client_a, end_user_a):
    """Values the server would accept somewhere: the fuzzer mixes them with odd ones."""
    code, verifier = make_code(public_client_a, end_user_a)
    return {
        "project": project_a,
        "values": [code, verifier, public_client_a.client_id, confidential_client_a.client_id,
                   confidential_client_a.plain_secret, project_a.registration_secret, *project_a.resources,
                   *public_client_a.redirect_uris.split(), "mcp:tools", "mcp:tools offline_access", *GRANTS],
        "authorizations": [f"Bearer {project_a.registration_secret}", basic(confidential_client_a.client_id,
                                                                           confidential_client_a.plain_secret)],
        "ids": [public_client_a.client_id, confidential_client_a.client_id],
    }


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8", "surrogatepass")).decode()


def values(live_values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(live_values),
        st.sampled_from(ODD),
        st.from_regex(r"mcp(at|rt|s|cs)_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9._~-]{43,128}", fullmatch=True),  # verifier- and challenge-shaped
        st.text(max_size=40),
    )


def json_values(leaf: st.SearchStrategy[str]) -> st.SearchStrategy:
    scalars = st.one_of(leaf, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(leaf, inner, max_size=3),
                        max_leaves=8)


@st.composite
def requests(draw, live, method: str, path: str, body_kind: str | None):
    leaf = values(live["values"])
    pairs = draw(st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=8), leaf), max_size=8))
    encode = {"encoding": "utf-8", "errors": "surrogatepass"}  # a lone surrogate goes out as its (invalid) bytes
    kind = draw(st.sampled_from([body_kind or "none", "form", "json", "raw", "none"]))
    if kind == "form":
        body: bytes = urlencode(pairs, **encode).encode()
    elif kind == "json":  # built by hand so that keys may repeat
        members = [(k, draw(json_values(leaf))) for k, _ in pairs]
        body = ("{" + ",".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in members) + "}").encode()
    elif kind == "raw":
        body = draw(st.binary(max_size=300))
    else:
        body = b""
    default_type = {"form": MEDIA_TYPES[0], "json": MEDIA_TYPES[1]}.get(kind, "")
    content_type = draw(st.sampled_from([default_type, default_type, *MEDIA_TYPES]))
    query = urlencode(draw(st.lists(st.tuples(st.sampled_from(NAMES), leaf), max_size=3)), **encode)
    filled = path.format(client_id=quote(draw(st.sampled_from(live["ids"]) | leaf), safe="", **encode),
                         request_id=quote(draw(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True) | leaf),
                                          safe="", **encode))
    headers = {}
    authorization = draw(st.none() | st.sampled_from(live["authorizations"])
                         | st.builds(basic, leaf, leaf)
                         | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60))
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    if draw(st.booleans()):
        headers["HTTP_DPOP"] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
    return {"method": draw(st.sampled_from([method] * 6 + ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])),
            "path": f"/p/{live['project'].slug}/{filled}" + (f"?{query}" if query else ""),
            "body": body, "content_type": content_type, "headers": headers}


def send(request: dict):
    http = Client()
    return http.generic(request["method"], request["path"], request["body"], content_type=request["content_type"],
                        **request["headers"])


def may_write_when_refused(path: str, response) -> bool:
    """RFC 6749 §4.1.2: a replayed code SHOULD revoke what it issued (a refusal that deletes rows)."""
    return "oauth/token" in path and response.status_code == 400 and response.json().get("error") == "invalid_grant"


@pytest.mark.parametrize("method,path,body_kind", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_no_generated_request_gets_a_5xx_or_an_odd_error_or_writes_when_refused(live, method, path, body_kind):
    @given(request=requests(live, method, path, body_kind))
    def check(request):
        before = rows()
        response = send(request)
        assert response.status_code < 500, (request, response.content[:300])
        if response.status_code >= 400:
            assert_error_shape(response.status_code, response.get("Content-Type", ""), response.content)
            if not may_write_when_refused(request["path"], response):
                assert rows() == before, request

    check()


def test_the_authorization_endpoint_never_answers_5xx(live):
    """A browser route: refusals are pages or redirects; neither may be a 5xx."""
    @given(request=requests(live, "GET", "oauth/authorize", None))
    def check(request):
        response = send({**request, "method": "GET"})
        assert response.status_code < 500, request

    check()
