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


def digest(value: str) -> str:
    """Keyed digest (HMAC-SHA256, DIGEST_KEY) of a secret, as 64 hex characters."""
    return hmac.new(settings.DIGEST_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def lookup_prefix(value: str) -> str:
    """The non-secret part kept in clear: the type prefix and the first few random characters."""
    head, sep, rest = value.partition("_")
    return f"{head}{sep}{rest[:LOOKUP_CHARS]}" if sep else ""


def matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value), stored_digest)
