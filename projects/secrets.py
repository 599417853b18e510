"""Prefixed high-entropy secrets: generated with `secrets`, stored as lookup prefix + HMAC-SHA256.

High-entropy values need no password hasher: a keyed digest compared in constant time is
enough, and it costs microseconds instead of PBKDF2's hundreds of milliseconds.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

SECRET_PREFIX = "mcps_"
ACCESS_TOKEN_PREFIX = "mcpat_"
REFRESH_TOKEN_PREFIX = "mcprt_"
CLIENT_SECRET_PREFIX = "mcpcs_"
REGISTRATION_TOKEN_PREFIX = "mcpreg_"
LOOKUP_CHARS = 8  # characters after the prefix kept in clear to find the row


def generate(prefix: str) -> str:
    """`prefix` + 43 url-safe characters (256 bits)."""
    return prefix + secrets.token_urlsafe(32)


def digest(value: str, key: str | None = None) -> str:
    """Keyed digest (HMAC-SHA256, DIGEST_KEY or the `key` given) of a secret, as 64 hex characters."""
    return hmac.digest((key or settings.DIGEST_KEY).encode(), value.encode(), hashlib.sha256).hex()  # one C call


def digest_keys() -> list[str]:
    """DIGEST_KEY, then the previous keys of DIGEST_KEY_FALLBACKS: a digest made under any of them
    still matches (a digest cannot be re-keyed without the secret, which is never kept)."""
    return [settings.DIGEST_KEY, *getattr(settings, "DIGEST_KEY_FALLBACKS", [])]


def digests(value: str) -> list[str]:
    """The digests of `value` under every key in `digest_keys()`, for lookups by digest."""
    return [digest(value, key) for key in digest_keys()]


def lookup_prefix(value: str) -> str:
    """The non-secret part kept in clear: the type prefix and the first few random characters."""
    head, sep, rest = value.partition("_")
    return f"{head}{sep}{rest[:LOOKUP_CHARS]}" if sep else ""


def matches(value: str, stored_digest: str) -> bool:
    # Every key is tried (no early exit): the time taken does not say which key matched.
    found = [hmac.compare_digest(candidate, stored_digest) for candidate in digests(value)]
    return any(found)
