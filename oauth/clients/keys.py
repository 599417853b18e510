"""A client's public keys (RFC 7591 §2 `jwks` / `jwks_uri`, RFC 7517), for `private_key_jwt`.

- `public_keyset(value)` checks a JWK Set a client registers or serves: a JSON object with
  1–10 asymmetric public keys (RSA of 2048 bits or more, EC, OKP); a private or symmetric key is
  refused, so the set can never double as a shared secret.
- `keyset_for(client)` gives the keys to verify the client's assertions with: its stored `jwks`,
  or the set at its `jwks_uri`, fetched only through the SSRF-safe `infra.outbound` and kept in
  the shared cache (Redis in production) for JWKS_CACHE_SECONDS, so every worker sees one copy.
  `refresh=True` (an assertion names a `kid` the cached set lacks) refetches at most once per
  JWKS_REFETCH_INTERVAL_SECONDS per URL; a failed fetch backs the URL off for as long, so a
  client's slow or broken `jwks_uri` cannot tie the workers up.
"""

import hashlib
import json
import logging
from typing import Any

from django.core.cache import cache
from jwcrypto.common import JWException, base64url_decode
from jwcrypto.jwk import JWKSet

from infra import outbound
from oauth.errors import InvalidClient

log = logging.getLogger("mcpauth.client_keys")

MAX_KEYS = 10
MAX_JWKS_BYTES = 32 * 1024
MIN_RSA_BITS = 2048
ASYMMETRIC_KEY_TYPES = ("RSA", "EC", "OKP")
JWKS_CACHE_SECONDS = 300
JWKS_REFETCH_INTERVAL_SECONDS = 30
JWKS_FETCH_TIMEOUT_SECONDS = 5
CACHE_PREFIX = "jwks:uri:"


class KeySetError(ValueError):
    """A JWK Set that is not acceptable; the message is safe to show to the client's developer."""


def public_keyset(value: Any) -> dict:
    """`value` checked as a JWK Set of asymmetric public keys; the public form of it is returned."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise KeySetError("must be a JWK Set: an object with a non-empty keys array")
    if len(value["keys"]) > MAX_KEYS or len(json.dumps(value)) > MAX_JWKS_BYTES:
        raise KeySetError(f"holds at most {MAX_KEYS} keys and {MAX_JWKS_BYTES // 1024} KB")
    if any(not isinstance(key, dict) or key.get("kty") not in ASYMMETRIC_KEY_TYPES for key in value["keys"]):
        raise KeySetError("must hold asymmetric keys only (RSA, EC or OKP), never a symmetric key")
    try:
        keyset = JWKSet.from_json(json.dumps(value))
    except (JWException, ValueError, TypeError, KeyError):
        raise KeySetError("holds a key that is not a valid JWK") from None
    keys = list(keyset)
    if len(keys) != len(value["keys"]):
        raise KeySetError("holds a key that is not a valid JWK")
    for key in keys:
        if key.has_private:
            raise KeySetError("must hold public keys only: it contains a private key")
        if key.get("kty") == "RSA" and _rsa_bits(key) < MIN_RSA_BITS:
            raise KeySetError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return {"keys": [key.export(private_key=False, as_dict=True) for key in keys]}


def _rsa_bits(key) -> int:
    return int.from_bytes(base64url_decode(key.get("n", ""))).bit_length()


def keyset_for(client, *, refresh: bool = False) -> JWKSet | None:
    """The client's verification keys; None when a refresh is not due (see the module doc)."""
    if client.jwks:
        return None if refresh else JWKSet.from_json(json.dumps(client.jwks))
    if client.jwks_uri:
        document = fetched_keyset(client.jwks_uri, refresh=refresh)
        return None if document is None else JWKSet.from_json(json.dumps(document))
    raise InvalidClient("This client has neither jwks nor jwks_uri registered, so it cannot use private_key_jwt.",
                        reason=f"client {client.pk} has no keys")


def _key(uri: str) -> str:
    return CACHE_PREFIX + hashlib.sha256(uri.encode()).hexdigest()


def fetched_keyset(uri: str, *, refresh: bool = False) -> dict | None:
    """The JWK Set at `uri` from the shared cache, else fetched; None when a refresh is not due."""
    key = _key(uri)
    if not refresh:
        cached = cache.get(key)
        if cached is not None:
            return cached
    if cache.get(key + ":backoff"):
        raise InvalidClient("The client's jwks_uri could not be fetched recently; try again later.",
                            reason="jwks_uri backed off")
    if refresh and not cache.add(key + ":refetch", 1, JWKS_REFETCH_INTERVAL_SECONDS):
        return None
    try:
        document = _fetch(uri)
    except InvalidClient:
        cache.set(key + ":backoff", 1, JWKS_REFETCH_INTERVAL_SECONDS)
        raise
    cache.set(key, document, JWKS_CACHE_SECONDS)
    return document


def _fetch(uri: str) -> dict:
    """GET the set through the SSRF-safe wrapper; errors name no address and echo no body."""
    try:
        response = outbound.get(uri, max_bytes=MAX_JWKS_BYTES, timeout=JWKS_FETCH_TIMEOUT_SECONDS,
                                headers={"Accept": "application/jwk-set+json, application/json"})
    except outbound.OutboundError as exc:
        raise InvalidClient("The client's jwks_uri could not be fetched.", reason=f"jwks_uri: {exc}") from None
    if response.status != 200:
        raise InvalidClient(f"The client's jwks_uri answered HTTP {response.status}, not 200.",
                            reason="jwks_uri status")
    try:
        return public_keyset(json.loads(response.body))
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, KeySetError) else "must be a JSON JWK Set"
        raise InvalidClient(f"The document at the client's jwks_uri {detail}.", reason="jwks_uri document") from None
