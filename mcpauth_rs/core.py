"""RFC 7662 / RFC 9068 access-token checks for a resource server (an MCP server) of one mcpauth project.

A token is accepted only when all of these hold (getmcpauth's SDKs skip `iss` and `aud`; we don't):
- it is `active` (introspection) or carries a valid ES256 signature by a key in the issuer's JWKS
  with `typ: at+jwt` (RFC 9068 §4);
- `iss` is exactly our issuer;
- `aud` names this resource server's own URL (RFC 8707: a token for another MCP server of the
  same project is refused);
- `exp` is in the future (and `nbf`, if present, is not);
- every required scope is granted (else `InsufficientScope`, which carries the token, for a 403).

Introspection answers are cached briefly (`cache_seconds`, never past `exp`), so a revoked
opaque token may still pass for that long; set `cache_seconds=0` to ask every time.
"""

from __future__ import annotations

import base64
import hashlib
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

logger = logging.getLogger("mcpauth_rs")

JWT_TYPES = {"at+jwt", "application/at+jwt"}
JWT_ALGORITHMS = {"ES256"}
MAX_CACHE_ENTRIES = 10_000
JWKS_REFRESH_SECONDS = 30.0


class TokenRejected(Exception):
    """The bearer token is not acceptable here. The message is for logs, never for the client."""

    error = "invalid_token"
    status = 401


class InsufficientScope(TokenRejected):
    """The token is valid but lacks a required scope (RFC 6750 §3.1: 403 `insufficient_scope`)."""

    error = "insufficient_scope"
    status = 403

    def __init__(self, message: str, token: VerifiedToken, missing: Iterable[str]):
        super().__init__(message)
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
    """

    def __init__(self, issuer: str, resource: str, *, required_scopes: Iterable[str] = (),
                 introspection_secret: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, token_format: Literal["auto", "opaque", "jwt"] = "auto",
                 check_revocation: bool = False, cache_seconds: float = 10.0, leeway: int = 0,
                 timeout: float = 5.0, introspection_endpoint: str | None = None, jwks_uri: str | None = None,
                 resource_name: str | None = None):
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
        return doc

    def www_authenticate(self, error: str | None = None, description: str | None = None) -> str:
        """The RFC 6750 / RFC 9728 §5.1 challenge that points clients at our metadata."""
        parts = [f'resource_metadata="{self.metadata_url}"']
        if error:
            parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{description}"')
        if self.required_scopes:
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        return "Bearer " + ", ".join(parts)

    def verify(self, token: str) -> VerifiedToken:
        """All the checks above, or `TokenRejected` (401) / `InsufficientScope` (403)."""
        if not token or len(token) > 8192:
            raise TokenRejected("empty or oversized token")
        if self.token_format != "opaque" and looks_like_jwt(token):
            claims = self._verify_jwt(token)
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
        from jwcrypto import jws
        from jwcrypto.common import JWException

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
        from jwcrypto import jwk

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
