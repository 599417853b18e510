"""A fast keyed hasher for client secrets, plugged in through the toolkit's CLIENT_SECRET_HASHER.

Client secrets are 256-bit random values, so a slow password hasher (PBKDF2, ~330 ms of CPU per
check) buys nothing: HMAC-SHA256 under DIGEST_KEY with a per-secret salt, compared in constant
time, is as strong for them and costs microseconds. People's passwords keep Django's default.
"""

import hmac

from django.conf import settings
from django.contrib.auth.hashers import BasePasswordHasher
from django.utils.crypto import constant_time_compare

from projects.secrets import digest_keys

# The stored client_secret of a client that has none (a public client): in this hasher's format,
# so the toolkit neither hashes it again nor compares it as plain text, with a "digest" that is
# not hex, so no presented secret ever verifies against it.
NO_SECRET = "mcpauth_hmac$-$none"


class HmacSecretHasher(BasePasswordHasher):
    algorithm = "mcpauth_hmac"

    def _digest(self, secret: str, salt: str, key: str | None = None) -> str:
        # hmac.digest: the one-shot form, computed in C (hmac.new builds a Python HMAC object).
        return hmac.digest((key or settings.DIGEST_KEY).encode(), f"{salt}${secret}".encode(), "sha256").hex()

    def encode(self, password: str, salt: str) -> str:
        if password is None:
            raise TypeError("password must be provided.")
        if not salt or "$" in salt:  # "$" separates the stored fields
            raise ValueError("salt must be provided and cannot contain $.")
        return f"{self.algorithm}${salt}${self._digest(password, salt)}"

    def decode(self, encoded: str) -> dict:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "salt": salt, "hash": digest}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        # DIGEST_KEY, then DIGEST_KEY_FALLBACKS (projects.secrets.digest_keys): a rotated key keeps old secrets.
        found = [constant_time_compare(self._digest(password, decoded["salt"], key), decoded["hash"])
                 for key in digest_keys()]
        return any(found)

    def safe_summary(self, encoded: str) -> dict:
        return {"algorithm": self.algorithm, "salt": "…", "hash": "…"}

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        return None
