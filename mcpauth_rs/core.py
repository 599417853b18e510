"""RFC 7662 / RFC 9068 access-token checks for a resource server (an MCP server) of one mcpauth project.

A token is accepted only when all of these hold (getmcpauth's SDKs skip `iss` and `aud`; we don't):
- it is `active` (introspection) or carries a valid ES256 signature by a key in the issuer's JWKS
  with `typ: at+jwt` (RFC 9068 §4);
- `iss` is exactly our issuer;
- `aud` names this resource server's own URL (RFC 8707: a token for another MCP server of the
  same project is refused);
- `exp` is in the future (and `nbf`, if present, is not);
- every required scope is granted (else `InsufficientScope`, which carries the token, for a 403);
- a DPoP-bound token (`cnf.jkt`, RFC 9449) comes with the `DPoP` scheme and a proof that passes
  the DPoP proof checks below (signature, `ath`, `htm`, `htu`, `iat`, unseen `jti`, nonce if asked) by the
  key it is bound to: use `verify_request`; `verify` (a bare token) refuses bound tokens.

Introspection answers are cached briefly (`cache_seconds`, never past `exp`), so a revoked
opaque token may still pass for that long; set `cache_seconds=0` to ask every time. A JWT checked
locally is good until `exp` after its revocation, unless the issuer's revocation feed is polled
(`revocation_feed_secret`, every `revocation_poll_seconds`; `mcpauth_rs.revocations`) or
`check_revocation` asks introspection every time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from .dpop import (
    ALGORITHMS,
    MemoryReplayCache,
    NonceSigner,
    Proof,
    ProofRejected,
    ReplayCache,
    first_use,
    verify_proof,
)
from .revocations import RevocationFeed

# --- access tokens ---------------------------------------------------------------------------------

logger = logging.getLogger("mcpauth_rs")

JWT_TYPES = {"at+jwt", "application/at+jwt"}
JWT_ALGORITHMS = {"ES256"}
MAX_CACHE_ENTRIES = 10_000
JWKS_REFRESH_SECONDS = 30.0


class TokenRejected(Exception):
    """The bearer token is not acceptable here. The message is for logs, never for the client.

    `scheme` is the challenge to answer with (`ResourceServer.challenge`): DPoP for DPoP errors.
    """

    error = "invalid_token"
    status = 401
    scheme = "Bearer"

    def __init__(self, message: str = "", *, scheme: str | None = None):
        super().__init__(message)
        if scheme:
            self.scheme = scheme


class DpopProofRejected(TokenRejected):
    """RFC 9449 §7.1: the DPoP proof is missing, invalid, replayed, or by another key than the token's."""

    error = "invalid_dpop_proof"
    scheme = "DPoP"


class DpopNonceRequired(TokenRejected):
    """RFC 9449 §9: sign the proof again with `nonce` (sent in the DPoP-Nonce header)."""

    error = "use_dpop_nonce"
    scheme = "DPoP"

    def __init__(self, message: str, nonce: str):
        super().__init__(message)
        self.nonce = nonce


class InsufficientScope(TokenRejected):
    """The token is valid but lacks a required scope (RFC 6750 §3.1: 403 `insufficient_scope`)."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, message: str, token: VerifiedToken, missing: Iterable[str]):
        super().__init__(message, scheme="DPoP" if token.jkt else None)
        self.token = token
        self.missing = tuple(missing)


@dataclass(frozen=True)
class VerifiedToken:
    """What a resource server may rely on once a token passed every check."""

    subject: str | None
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    issuer: str
    expires_at: int
    source: Literal["introspection", "jwt"]
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def jkt(self) -> str | None:
        """The thumbprint of the DPoP key this token is bound to (RFC 9449 §6), or None for a bearer token."""
        cnf = self.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return jkt if isinstance(jkt, str) and jkt else None


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(("mcpat_", "mcprt_"))


def protected_resource_metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known segment goes between the host and the resource's path."""
    parts = urllib.parse.urlsplit(resource)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{path}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect from the issuer is an error, not a hop
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class ResourceServer:
    """The checks of one MCP server (`resource`) protected by one mcpauth project (`issuer`).

    Credentials for introspection: a project secret holding `introspect`
    (`introspection_secret`), or a confidential client of the project (`client_id` +
    `client_secret`). JWT-format projects need none: tokens are checked against the JWKS,
    unless `check_revocation` asks introspection too.

    Revocation feed: with `revocation_feed_secret` (a project secret holding `introspect`), JWTs
    whose `jti` the issuer's feed lists are refused; the feed is read every
    `revocation_poll_seconds` (on `verify`), so a revoked JWT stops working within that interval.

    DPoP (RFC 9449): with `dpop=True`, `verify_request` takes DPoP-bound tokens. The `jti` of
    each proof is remembered in `dpop_replay_cache` (anything with Django's cache `add`); the
    default is this process's memory, so a server with several worker processes must pass a
    shared one (Django's cache on Redis). `dpop_nonce_secret` (the same on every worker) makes
    proofs carry a nonce this server issued (§9).
    """

    def __init__(self, issuer: str, resource: str, *, required_scopes: Iterable[str] = (),
                 introspection_secret: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, token_format: Literal["auto", "opaque", "jwt"] = "auto",
                 check_revocation: bool = False, cache_seconds: float = 10.0, leeway: int = 0,
                 timeout: float = 5.0, introspection_endpoint: str | None = None, jwks_uri: str | None = None,
                 resource_name: str | None = None, dpop: bool = False,
                 dpop_replay_cache: ReplayCache | None = None,
                 dpop_nonce_secret: str | bytes | None = None,
                 dpop_algorithms: Iterable[str] = ALGORITHMS,
                 revocation_feed_secret: str | None = None, revocation_poll_seconds: float = 30.0,
                 revocation_feed_endpoint: str | None = None):
        self.issuer = issuer.rstrip("/")
        self.resource = resource
        self.required_scopes = tuple(required_scopes)
        self.token_format = token_format
        self.check_revocation = check_revocation
        self.cache_seconds = cache_seconds
        self.leeway = leeway
        self.timeout = timeout
        self.resource_name = resource_name
        self._introspection_auth = self._auth_header(introspection_secret, client_id, client_secret)
        self._endpoints = {"introspection_endpoint": introspection_endpoint, "jwks_uri": jwks_uri}
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._jwks: Any = None
        self._jwks_fetched_at = 0.0
        self._lock = threading.Lock()
        self.dpop = dpop
        self.dpop_algorithms = tuple(dpop_algorithms)
        self._replays = dpop_replay_cache if dpop_replay_cache is not None else MemoryReplayCache()
        secret = dpop_nonce_secret.encode() if isinstance(dpop_nonce_secret, str) else dpop_nonce_secret
        self._nonces = NonceSigner(secret, scope=resource) if secret else None
        self.revocations: RevocationFeed | None = None
        if revocation_feed_secret:
            endpoint = revocation_feed_endpoint or f"{self.issuer}/oauth/revocations"
            self.revocations = RevocationFeed(lambda: endpoint, revocation_feed_secret,
                                              lambda url, headers: self._request(url, None, headers),
                                              poll_seconds=revocation_poll_seconds)

    # -- public ---------------------------------------------------------------------------------
    @property
    def metadata_url(self) -> str:
        return protected_resource_metadata_url(self.resource)

    def metadata(self) -> dict[str, Any]:
        """This resource's RFC 9728 Protected Resource Metadata document."""
        doc: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
        }
        if self.required_scopes:
            doc["scopes_supported"] = list(self.required_scopes)
        if self.resource_name:
            doc["resource_name"] = self.resource_name
        if self.dpop:
            doc["dpop_signing_alg_values_supported"] = list(self.dpop_algorithms)
        return doc

    def www_authenticate(self, error: str | None = None, description: str | None = None,
                         scheme: str = "Bearer") -> str:
        """The RFC 6750 / RFC 9728 §5.1 challenge that points clients at our metadata (RFC 9449
        §7.1: the DPoP one also lists `algs`)."""
        parts = [f'resource_metadata="{self.metadata_url}"']
        if error:
            parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{description}"')
        if self.required_scopes:
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        if scheme == "DPoP":
            parts.append(f'algs="{" ".join(self.dpop_algorithms)}"')
        return f"{scheme} " + ", ".join(parts)

    def challenge(self, error: TokenRejected | None = None) -> dict[str, str]:
        """The headers of a 401/403 answer: `WWW-Authenticate` in the scheme the error belongs to
        (a DPoP challenge too when DPoP is on and the error is not DPoP's), `DPoP-Nonce` if asked."""
        scheme = error.scheme if error is not None else "Bearer"
        code = error.error if error is not None else None
        values = [self.www_authenticate(code, scheme=scheme)]
        if self.dpop and scheme != "DPoP":
            values.append(self.www_authenticate(scheme="DPoP"))
        headers = {"WWW-Authenticate": ", ".join(values)}
        if isinstance(error, DpopNonceRequired):
            headers["DPoP-Nonce"] = error.nonce
        elif self._nonces is not None and self.dpop:
            headers["DPoP-Nonce"] = self._nonces.current()
        return headers

    def verify_request(self, authorization: str | None, *, method: str, url: str,
                       dpop: str | None = None) -> VerifiedToken:
        """A protected-resource request (RFC 6750 §2.1, RFC 9449 §7): its `Authorization` header,
        method, full URL and `DPoP` header. Bearer tokens as `verify`; DPoP tokens with their proof."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer":
            return self.verify(token)
        if scheme.lower() != "dpop" or not self.dpop:
            raise TokenRejected(f"no usable authorization scheme ({scheme[:20]!r})")
        proof = self._verify_proof(dpop, method, url, token)
        try:
            verified = self._verify(token)
        except InsufficientScope as exc:
            self._check_binding(exc.token, proof)  # the key first: a 403 only for the token's holder
            raise
        except TokenRejected as exc:
            exc.scheme = "DPoP"  # answered in the scheme the client used
            raise
        self._check_binding(verified, proof)
        return verified

    @staticmethod
    def _check_binding(verified: VerifiedToken, proof: Proof) -> None:
        if verified.jkt is None:
            raise TokenRejected("DPoP scheme with a token that is not DPoP-bound", scheme="DPoP")
        if not hmac.compare_digest(verified.jkt, proof.jkt):  # §7.1: "invalid DPoP key binding"
            raise DpopProofRejected("proof key is not the token's cnf.jkt")

    def verify(self, token: str) -> VerifiedToken:
        """A bearer token: all the checks above, or `TokenRejected` (401) / `InsufficientScope` (403).

        A DPoP-bound token is refused here (RFC 9449 §7.2): it is only good with its proof.
        """
        try:
            verified = self._verify(token)
        except InsufficientScope as exc:
            if exc.token.jkt is not None:
                raise TokenRejected("a DPoP-bound token presented as a bearer token", scheme="DPoP") from None
            raise
        if verified.jkt is not None:
            raise TokenRejected("a DPoP-bound token presented as a bearer token", scheme="DPoP")
        return verified

    def _verify_proof(self, proof: str | None, method: str, url: str, token: str) -> Proof:
        """RFC 9449 §4.3 (with `ath`, §7.1), the nonce if we ask for one (§9), then the jti replay cache."""
        try:
            checked = verify_proof(proof, method=method, url=url, access_token=token,
                                               algorithms=self.dpop_algorithms)
        except ProofRejected as exc:
            raise DpopProofRejected(str(exc)) from None
        if self._nonces is not None and not self._nonces.accepts(checked.nonce):
            raise DpopNonceRequired("proof without a current nonce", self._nonces.current())
        if not first_use(self._replays, checked, url):
            raise DpopProofRejected("proof jti replayed")
        return checked

    def _verify(self, token: str) -> VerifiedToken:
        if not token or len(token) > 8192:
            raise TokenRejected("empty or oversized token")
        if self.token_format != "opaque" and looks_like_jwt(token):
            claims = self._verify_jwt(token)
            if self.revocations is not None and self.revocations.is_revoked(claims.get("jti")):
                raise TokenRejected("jti listed in the issuer's revocation feed")
            if self.check_revocation:
                self._require_active(token)
            source: Literal["introspection", "jwt"] = "jwt"
        elif self.token_format == "jwt":
            raise TokenRejected("not a JWT")
        else:
            claims = self._require_active(token)
            source = "introspection"
        return self._check_claims(claims, source)

    def forget(self, token: str) -> None:
        """Drop a cached introspection answer (say, after the resource server saw the token revoked)."""
        with self._lock:
            self._cache.pop(self._cache_key(token), None)

    # -- the checks -----------------------------------------------------------------------------
    def _check_claims(self, claims: dict[str, Any], source: Literal["introspection", "jwt"]) -> VerifiedToken:
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise TokenRejected(f"iss {claims.get('iss')!r} is not {self.issuer!r}")
        audience = claims.get("aud")
        audience = (audience,) if isinstance(audience, str) else tuple(a for a in audience or () if isinstance(a, str))
        if not any(_same_url(aud, self.resource) for aud in audience):
            raise TokenRejected(f"aud {audience!r} does not name {self.resource!r}")
        expires_at = claims.get("exp")
        if not isinstance(expires_at, int | float) or isinstance(expires_at, bool) or expires_at + self.leeway <= now:
            raise TokenRejected("expired or no exp")
        not_before = claims.get("nbf")
        if isinstance(not_before, int | float) and not_before - self.leeway > now:
            raise TokenRejected("not yet valid (nbf)")
        if claims.get("token_type") == "refresh_token":
            raise TokenRejected("a refresh token is not an access token")
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise TokenRejected("no client_id")
        scope = claims.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else ()
        subject = claims.get("sub")
        verified = VerifiedToken(
            subject=subject if isinstance(subject, str) else None, client_id=client_id, scopes=scopes,
            audience=audience, issuer=self.issuer, expires_at=int(expires_at), source=source, claims=claims,
        )
        missing = [s for s in self.required_scopes if s not in scopes]
        if missing:
            raise InsufficientScope(f"missing scopes {missing}", verified, missing)
        return verified

    def _require_active(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection, answered from the short cache when possible."""
        key = self._cache_key(token)
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
            self._cache.pop(key, None)
        claims = self._introspect(token)
        if claims.get("active") is not True:
            raise TokenRejected("introspection: inactive")
        self._remember(key, claims)
        return claims

    def _introspect(self, token: str) -> dict[str, Any]:
        if self._introspection_auth is None:
            raise TokenRejected("no introspection credentials configured")
        endpoint = self._endpoint("introspection_endpoint")
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode()
        headers = {"Authorization": self._introspection_auth, "Content-Type": "application/x-www-form-urlencoded"}
        status, document = self._request(endpoint, body, headers)
        if status != 200 or not isinstance(document, dict):
            # Fail closed: an issuer we cannot ask is an issuer that vouches for nothing.
            logger.warning("introspection at %s answered HTTP %s", endpoint, status)
            raise TokenRejected(f"introspection failed (HTTP {status})")
        return document

    def _verify_jwt(self, token: str) -> dict[str, Any]:
        signed = jws.JWS()
        try:
            signed.deserialize(token)
            header = signed.jose_header
        except (JWException, ValueError, TypeError) as exc:
            raise TokenRejected(f"malformed JWT: {exc.__class__.__name__}") from None
        if header.get("alg") not in JWT_ALGORITHMS:
            raise TokenRejected(f"alg {header.get('alg')!r} not allowed")
        if str(header.get("typ", "")).lower() not in JWT_TYPES:
            raise TokenRejected(f"typ {header.get('typ')!r} is not at+jwt (RFC 9068 §4)")
        key = self._signing_key(header.get("kid"))
        try:
            signed.verify(key, alg=header["alg"])
            claims = json.loads(signed.payload)
        except (JWException, ValueError) as exc:
            raise TokenRejected(f"bad signature: {exc.__class__.__name__}") from None
        if not isinstance(claims, dict):
            raise TokenRejected("JWT payload is not an object")
        return claims

    # -- plumbing -------------------------------------------------------------------------------
    def _signing_key(self, kid: Any) -> Any:
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("JWT has no kid")
        with self._lock:
            key = self._jwks.get_key(kid) if self._jwks is not None else None
            stale = time.monotonic() - self._jwks_fetched_at > JWKS_REFRESH_SECONDS
        if key is None and (self._jwks is None or stale):  # a new kid: the issuer rotated keys
            self._load_jwks()
            with self._lock:
                key = self._jwks.get_key(kid)
        if key is None:
            raise TokenRejected(f"unknown kid {kid!r}")
        return key

    def _load_jwks(self) -> None:
        status, document = self._request(self._endpoint("jwks_uri"))
        if status != 200 or not isinstance(document, dict):
            raise TokenRejected(f"JWKS fetch failed (HTTP {status})")
        keys = jwk.JWKSet()
        keys.import_keyset(json.dumps(document))
        with self._lock:
            self._jwks, self._jwks_fetched_at = keys, time.monotonic()

    def _endpoint(self, name: str) -> str:
        if not self._endpoints.get(name):
            self._discover()
        endpoint = self._endpoints.get(name)
        if not endpoint:
            raise TokenRejected(f"issuer metadata has no {name}")
        return endpoint

    def _discover(self) -> None:
        """RFC 8414 metadata from `{issuer}/.well-known/oauth-authorization-server`, issuer checked (§3.3)."""
        status, document = self._request(f"{self.issuer}/.well-known/oauth-authorization-server")
        if status != 200 or not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise TokenRejected(f"issuer metadata unusable (HTTP {status})")
        for name in self._endpoints:
            self._endpoints[name] = self._endpoints[name] or document.get(name)

    def _request(self, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, headers={"Accept": "application/json", **(headers or {})})
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read(1_000_000)
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            logger.warning("cannot reach %s: %s", url, exc)
            return 0, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def _remember(self, key: str, claims: dict[str, Any]) -> None:
        exp = claims.get("exp")
        ttl = self.cache_seconds
        if isinstance(exp, int | float):
            ttl = min(ttl, exp - time.time())
        if ttl <= 0:
            return
        with self._lock:
            self._cache[key] = (time.monotonic() + ttl, claims)
            while len(self._cache) > MAX_CACHE_ENTRIES:
                self._cache.popitem(last=False)

    @staticmethod
    def _cache_key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()  # never keep the token itself

    @staticmethod
    def _auth_header(secret: str | None, client_id: str | None, client_secret: str | None) -> str | None:
        if secret:
            return f"Bearer {secret}"
        if client_id and client_secret:
            pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
            return "Basic " + base64.b64encode(pair.encode()).decode()
        return None
