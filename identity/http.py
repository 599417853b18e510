"""Upstream HTTP for Authlib's client, through infra.outbound (the one SSRF-safe wrapper), and the
shared cache of upstream discovery documents and key sets.

Authlib's `OAuth2Client` takes the HTTP session it talks through as its `session` argument; `Session`
is that session, with the two calls the client makes (`post` to the token endpoint, `request`), each
an `infra.outbound` request. Discovery documents and JWKS are kept in the shared cache (Redis), so
every worker reads the same copy and an upstream is asked at most once per `CACHE_SECONDS`.
"""

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache

from infra import outbound

MAX_BYTES = 256 * 1024  # discovery documents, key sets and token responses are a few KB
TIMEOUT_SECONDS = 8.0
CACHE_SECONDS = 3600


class UpstreamError(Exception):
    """The upstream could not be reached or answered badly. The message is for logs only."""


class Response:
    """What Authlib's client reads of an HTTP response (requests-shaped: status_code, json())."""

    def __init__(self, answer: outbound.OutboundResponse):
        self.status_code, self.headers, self.content = answer.status, answer.headers, answer.body

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise UpstreamError(f"upstream answered HTTP {self.status_code}")


class Session:
    """The `session` of Authlib's OAuth2Client: every request goes out through infra.outbound."""

    def post(self, url: str, data: dict | None = None, headers: dict | None = None, auth=None, **_) -> Response:
        return self.request("POST", url, data=data, headers=headers, auth=auth)

    def request(self, method: str, url: str, data: dict | None = None, headers: dict | None = None, auth=None,
                **_) -> Response:
        body = urlencode(data or {})
        headers = dict(headers or {})
        if auth is not None:  # Authlib's ClientAuth: client_secret_basic or client_secret_post
            url, headers, body = auth.prepare(method, url, headers, body)
        return send(method, url, body.encode() if method == "POST" else None, headers)


def send(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> Response:
    try:
        return Response(outbound.request(method, url, body, headers=headers, max_bytes=MAX_BYTES,
                                         timeout=TIMEOUT_SECONDS))
    except outbound.OutboundError as exc:
        raise UpstreamError(f"{method} {url}: {exc}") from None


def get_json(url: str, headers: dict | None = None) -> Any:
    response = send("GET", url, headers={"Accept": "application/json", **(headers or {})})
    response.raise_for_status()
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"GET {url}: not JSON") from None


def cached_json(url: str, *, refresh: bool = False) -> dict:
    """A discovery document or key set, from the shared cache or fetched (and kept) now."""
    key = "identity:upstream:" + hashlib.sha256(url.encode()).hexdigest()
    document = None if refresh else cache.get(key)
    if document is None:
        document = get_json(url)
        if not isinstance(document, dict):
            raise UpstreamError(f"GET {url}: not a JSON object")
        cache.set(key, document, CACHE_SECONDS)
    return document
