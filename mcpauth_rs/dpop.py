"""DPoP proof checks (RFC 9449 §4.3), shared by the authorization server and resource servers.

`verify_proof` does the checks any receiver of a proof makes: one well-formed JWS with
`typ: dpop+jwt`, an asymmetric `alg` from the allowed list, a public `jwk` in its header that
verifies the signature, `jti`, `htm` and `htu` matching the request (query and fragment ignored),
`iat` within the window, and `ath` when an access token comes with it. What depends on where the
proof arrives (the `jti` replay cache, server nonces) is the caller's: `ReplayCache`, `NonceSigner`.
All JOSE is jwcrypto's, thumbprints included (RFC 7638).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from jwcrypto import jwk, jws
from jwcrypto.common import JWException

# `verify_proof` makes the checks any receiver of a proof makes; what depends on where the proof
# arrives (the `jti` replay cache, server nonces) is the caller's: `ReplayCache`, `NonceSigner`.
# Kept in this module (re-exported by `mcpauth_rs.dpop`): the package imports it, so it imports no
# sibling (tests/test_architecture.py, no import circle).

TYP = "dpop+jwt"
# Asymmetric JWS algorithms jwcrypto verifies (RFC 9449 §4.3 step 5: no "none", no MAC).
ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256")
IAT_PAST_SECONDS = 300  # how old a proof may be
IAT_FUTURE_SECONDS = 60  # how far a client's clock may run ahead of ours
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256


class ProofRejected(Exception):
    """The proof fails a check of §4.3; the message is for logs, not for the client."""


@dataclass(frozen=True)
class Proof:
    """A proof that passed `verify_proof`: its key's thumbprint, `jti`, and `nonce` if any."""

    jkt: str
    jti: str
    nonce: str | None
    iat: int


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a JWK (what `cnf.jkt` carries, RFC 9449 §6)."""
    return jwk.JWK(**public_jwk).thumbprint()


def access_token_hash(token: str) -> str:
    """`ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII bytes."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalize_uri(uri: str) -> str:
    """The URI without query and fragment, scheme and host lower-cased, default port dropped
    (RFC 9449 §4.3 step 9, with RFC 3986 §6.2.2 and §6.2.3 normalization); ValueError if unparsable."""
    parts = urllib.parse.urlsplit(uri)
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    port = parts.port  # ValueError for a port out of range: not a URI anyone called
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        netloc += f":{port}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def _header(signed: jws.JWS) -> dict[str, Any]:
    header = signed.jose_header
    if str(header.get("typ", "")).lower() != TYP:  # a media type: case-insensitive
        raise ProofRejected(f"typ {header.get('typ')!r} is not {TYP}")
    return header


def _public_key(header: dict[str, Any], algorithms: tuple[str, ...]) -> jwk.JWK:
    if header.get("alg") not in algorithms:
        raise ProofRejected(f"alg {header.get('alg')!r} is not one of {', '.join(algorithms)}")
    raw = header.get("jwk")
    if not isinstance(raw, dict):
        raise ProofRejected("no jwk in the header")
    try:
        key = jwk.JWK(**raw)
        symmetric_or_private = key.get("kty") == "oct" or key.has_private
    except (JWException, ValueError, TypeError, KeyError, AttributeError) as exc:  # jwcrypto's refusals vary
        raise ProofRejected(f"jwk unusable: {exc.__class__.__name__}") from None
    if symmetric_or_private:
        raise ProofRejected("jwk must be a public asymmetric key")
    return key


def _claims(signed: jws.JWS, key: jwk.JWK, alg: str) -> dict[str, Any]:
    signed.allowed_algs = [alg]
    try:
        signed.verify(key, alg=alg)
        claims = json.loads(signed.payload)
    except (JWException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProofRejected(f"signature does not verify: {exc.__class__.__name__}") from None
    if not isinstance(claims, dict):
        raise ProofRejected("payload is not a JSON object")
    return claims


def _check_claims(claims: dict[str, Any], method: str, url: str, now: float) -> None:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise ProofRejected("jti missing or too long")
    if claims.get("htm") != method.upper():
        raise ProofRejected(f"htm {claims.get('htm')!r} is not {method.upper()}")
    htu = claims.get("htu")
    try:
        same = isinstance(htu, str) and normalize_uri(htu) == normalize_uri(url)
    except ValueError:  # not a URI urllib can split (an unclosed IPv6 bracket, ...)
        same = False
    if not same:
        raise ProofRejected(f"htu {str(htu)[:200]!r} is not this request's URI")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ProofRejected("iat missing")
    if not now - IAT_PAST_SECONDS <= iat <= now + IAT_FUTURE_SECONDS:
        raise ProofRejected(f"iat {iat} outside the accepted window")


def verify_proof(proof: str | None, *, method: str, url: str, access_token: str | None = None,
                 algorithms: tuple[str, ...] = ALGORITHMS, now: float | None = None) -> Proof:
    """Every stateless check of RFC 9449 §4.3 (steps 1-11 but replay and nonce); `Proof` or ProofRejected."""
    if not isinstance(proof, str) or not proof or len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise ProofRejected("not one compact JWS")  # also two DPoP headers, joined by a comma
    signed = jws.JWS()
    try:
        signed.deserialize(proof)
        header = _header(signed)
    except (JWException, ValueError, TypeError) as exc:
        raise ProofRejected(f"malformed proof: {exc.__class__.__name__}") from None
    key = _public_key(header, algorithms)
    claims = _claims(signed, key, header["alg"])
    _check_claims(claims, method, url, time.time() if now is None else now)
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise ProofRejected("ath does not match the access token")
    nonce = claims.get("nonce")
    return Proof(jkt=key.thumbprint(), jti=claims["jti"], nonce=nonce if isinstance(nonce, str) else None,
                 iat=int(claims["iat"]))


def replay_key(proof: Proof, url: str) -> str:
    """A cache key for one proof's `jti` at one URI, of bounded length (the jti is the client's)."""
    digest = hashlib.sha256(f"{proof.jkt} {normalize_uri(url)} {proof.jti}".encode()).hexdigest()
    return f"dpop-jti:{digest}"


REPLAY_SECONDS = IAT_PAST_SECONDS + IAT_FUTURE_SECONDS  # a jti outlives the window it could be accepted in


class ReplayCache(Protocol):
    """What remembers seen `jti`s: `add` stores a key only if absent and says whether it did.

    Django's cache (`django.core.cache.cache`) is one; with several worker processes it must be
    one they all share (Redis, a database table), or a proof could be replayed to another worker.
    """

    def add(self, key: str, value: Any, timeout: float) -> bool: ...


class MemoryReplayCache:
    """One process's replay cache: for a single-process resource server only (see `ReplayCache`)."""

    def __init__(self, max_entries: int = 100_000):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def add(self, key: str, value: Any, timeout: float) -> bool:
        now = time.monotonic()
        with self._lock:
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + timeout
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
        return True


def first_use(cache: ReplayCache, proof: Proof, url: str) -> bool:
    """Record the proof's `jti` (RFC 9449 §11.1); False when it was seen before within the window."""
    return bool(cache.add(replay_key(proof, url), 1, REPLAY_SECONDS))


class NonceSigner:
    """Server-provided nonces (RFC 9449 §8, §9) that need no shared state: an HMAC of the current
    time slot, so every worker holding the same secret issues and accepts the same values.

    A nonce is good in its slot and the next one (`lifetime` seconds each).
    """

    def __init__(self, secret: bytes, *, scope: str = "", lifetime: int = 300):
        self._secret = secret
        self._scope = scope.encode()
        self.lifetime = lifetime

    def _value(self, slot: int) -> str:
        mac = hmac.new(self._secret, self._scope + b"|" + str(slot).encode(), hashlib.sha256).digest()
        return f"{slot:x}.{base64.urlsafe_b64encode(mac[:18]).decode()}"

    def current(self, now: float | None = None) -> str:
        return self._value(int((time.time() if now is None else now) // self.lifetime))

    def accepts(self, nonce: str | None, now: float | None = None) -> bool:
        if not isinstance(nonce, str) or len(nonce) > 64:
            return False
        slot = int((time.time() if now is None else now) // self.lifetime)
        return any(hmac.compare_digest(nonce, self._value(s)) for s in (slot, slot - 1))
