"""The signing keys of a trusted enterprise issuer (RFC 7517), for verifying its ID-JAGs.

An issuer's keys are an inline JWK Set stored on its row, or the set at its `jwks_uri`, fetched
only through the SSRF-safe `infra.outbound` and kept in the shared cache (Redis in production, the
cache table in the embedded default) for JWKS_CACHE_SECONDS, so every worker sees one copy.
Rollover: an assertion naming a `kid` the cached set lacks refetches the set, at most once per
JWKS_REFETCH_INTERVAL_SECONDS per URL; a failed fetch backs the URL off for as long. Every set is
checked by `oauth.clients.keys.public_keyset` (asymmetric public keys only, never a shared secret).
"""

import hashlib
import json

from django.core.cache import cache
from jwcrypto.jwk import JWKSet

from infra import outbound
from oauth.clients.keys import KeySetError, public_keyset
from oauth.errors import InvalidGrant

JWKS_CACHE_SECONDS = 300
JWKS_REFETCH_INTERVAL_SECONDS = 30
JWKS_FETCH_TIMEOUT_SECONDS = 5
MAX_JWKS_BYTES = 64 * 1024
CACHE_PREFIX = "jwks:issuer:"


class KeysUnavailable(Exception):
    """The issuer's JWKS could not be fetched or is not acceptable; `reason` is safe to show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def fetch(uri: str) -> dict:
    """GET the set at `uri` through the SSRF-safe wrapper, checked; errors name no address or body."""
    try:
        response = outbound.get(uri, max_bytes=MAX_JWKS_BYTES, timeout=JWKS_FETCH_TIMEOUT_SECONDS,
                                headers={"Accept": "application/jwk-set+json, application/json"})
    except outbound.OutboundError as exc:
        raise KeysUnavailable(exc.reason) from None
    if response.status != 200:
        raise KeysUnavailable(f"the jwks_uri answered HTTP {response.status}, not 200")
    try:
        return public_keyset(json.loads(response.body))
    except KeySetError as exc:
        raise KeysUnavailable(f"the document at the jwks_uri {exc}") from None
    except (ValueError, RecursionError):
        raise KeysUnavailable("the document at the jwks_uri is not a JSON JWK Set") from None


def _key(uri: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(uri.encode()).hexdigest()


def _refused(trusted, reason: str) -> InvalidGrant:
    return InvalidGrant("The assertion's issuer keys could not be obtained; try again later.",
                        reason=f"issuer {trusted.pk} jwks: {reason}")


def fetched(trusted, *, refresh: bool = False) -> dict | None:
    """The issuer's fetched set from the shared cache, else fetched; None when a refresh is not due."""
    key = _key(trusted.jwks_uri)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    if cache.get(key + ":backoff"):
        raise _refused(trusted, "backed off after a failed fetch")
    if refresh and not cache.add(key + ":refetch", 1, JWKS_REFETCH_INTERVAL_SECONDS):
        return None
    try:
        document = fetch(trusted.jwks_uri)
    except KeysUnavailable as exc:
        cache.set(key + ":backoff", 1, JWKS_REFETCH_INTERVAL_SECONDS)
        raise _refused(trusted, exc.reason) from None
    cache.set(key, document, JWKS_CACHE_SECONDS)
    return document


def keyset_for(trusted, *, refresh: bool = False) -> JWKSet | None:
    """The issuer's verification keys; None when a refresh is asked for and not possible or due."""
    if trusted.jwks:
        return None if refresh else JWKSet.from_json(json.dumps(trusted.jwks))
    document = fetched(trusted, refresh=refresh)
    return None if document is None else JWKSet.from_json(json.dumps(document))


def forget(trusted) -> None:
    """Drop the cached set (the operator changed or removed the issuer)."""
    if trusted.jwks_uri:
        cache.delete(_key(trusted.jwks_uri))
