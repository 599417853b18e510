"""Signing keys (RFC 7517/7518 ES256, and RS256 for OpenID Connect): generation, encryption at rest,
JWK export, thumbprint kid."""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from jwcrypto import jwk


def _fernet_for(material: str) -> Fernet:
    key = hashlib.sha256(b"mcpauth-signing-key-encryption:" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


@functools.lru_cache(maxsize=4)
def _cipher(materials: str) -> MultiFernet:
    # KEY_ENCRYPTION_KEY may list several keys (comma-separated): the first encrypts, all decrypt,
    # so the encryption key can be rotated without losing existing signing keys.
    return MultiFernet([_fernet_for(m.strip()) for m in materials.split(",") if m.strip()])


# Every column encrypted with KEY_ENCRYPTION_KEY, {"app_label.Model": (field, ...)}: each app lists
# its own next to the model (`encrypted_columns`), and `manage.py reencryptkeys` re-encrypts them all
# when the key is rotated, so no secret is left readable only under the old key.
ENCRYPTED_COLUMNS: dict[str, tuple[str, ...]] = {}


def encrypted_columns(model_label: str, *fields: str) -> None:
    """Declare `fields` of `model_label` as encrypted with `encrypt` (for `reencryptkeys`)."""
    ENCRYPTED_COLUMNS[model_label] = fields


def encrypt(plaintext: bytes) -> str:
    return _cipher(settings.KEY_ENCRYPTION_KEY).encrypt(plaintext).decode()


def decrypt(token: str) -> bytes:
    return _cipher(settings.KEY_ENCRYPTION_KEY).decrypt(token.encode())


def reencrypt(token: str) -> str:
    """`token` encrypted under the first KEY_ENCRYPTION_KEY, whichever listed key encrypted it
    (Fernet's rotate: the plaintext never leaves this call). InvalidToken if none of them did."""
    return _cipher(settings.KEY_ENCRYPTION_KEY).rotate(token.encode()).decode()


# RFC 7518 §3.1: the algorithms a project signs with, and the key each needs. ES256 signs access
# tokens; RS256 is offered for ID tokens too (OpenID Connect Core §15.1: RPs must support it).
KEY_PARAMS = {"ES256": {"kty": "EC", "crv": "P-256"}, "RS256": {"kty": "RSA", "size": 2048}}


def new_key(alg: str = "ES256") -> tuple[dict, str]:
    """A fresh key for `alg`: (public JWK with kid/alg/use, encrypted private PEM)."""
    key = jwk.JWK.generate(**KEY_PARAMS[alg])
    public = key.export_public(as_dict=True)
    public.update(kid=key.thumbprint(), alg=alg, use="sig")
    private_pem = key.export_to_pem(private_key=True, password=None)
    return public, encrypt(private_pem)


@functools.lru_cache(maxsize=256)
def load_private(encrypted_pem: str, kid: str, alg: str = "ES256") -> jwk.JWK:
    """Decrypt once per process; the decrypted key is derived state, never shared state."""
    key = jwk.JWK.from_pem(decrypt(encrypted_pem))
    key.update(kid=kid, alg=alg, use="sig")
    return key
