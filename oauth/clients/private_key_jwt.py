"""`private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9).

The client sends `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
and `client_assertion`, a compact JWS it signed with one of its asymmetric keys. A short list of
named checks, in this order, each refusing with 401 `invalid_client` and a description the
client's developer can act on (never a key, a fetched body or an address):

1. `require_parameters`: the assertion type, one assertion, each given once;
2. `read_header`: `alg` is RS256, PS256, ES256 or EdDSA (never `none`, never HMAC, so a public
   key can never serve as an HMAC secret);
3. `verify_signature`: with the client's keys (`oauth.clients.keys`), refetching a `jwks_uri`
   once when the `kid` is unknown; all JOSE is jwcrypto's;
4. `check_claims`: `iss` = `sub` = client_id; `aud` the issuer or the token endpoint (a string,
   or an array holding one of them); `exp` required, not past, and at most
   MAX_LIFETIME_SECONDS ahead (and `exp - iat` at most as much when `iat` is given); `nbf`
   and `iat` not in the future; `jti` required. CLOCK_SKEW_SECONDS is allowed on every time;
5. `spend_jti`: the `jti` is single use until the assertion expires, through `cache.add` on the
   shared cache, so of two workers given the same assertion exactly one accepts it.
"""

import hashlib
import json
import math
import time
from typing import Any

from django.core.cache import cache
from jwcrypto.common import JWException, base64url_decode
from jwcrypto.jws import JWS

from oauth.backend import django_request, issuer_of
from oauth.clients import keys as client_keys
from oauth.errors import InvalidClient, InvalidRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGS = ("RS256", "PS256", "ES256", "EdDSA")
MAX_LIFETIME_SECONDS = 300
CLOCK_SKEW_SECONDS = 15
MAX_ASSERTION_LENGTH = 8 * 1024
MAX_JTI_LENGTH = 255
PARAMETERS = ("client_assertion_type", "client_assertion")


def refuse(description: str, reason: str = "") -> InvalidClient:
    return InvalidClient(description, reason=reason or description)


def unverified_claims(assertion: Any) -> dict:
    """The payload of a compact JWS, NOT verified: only to find which client to verify it for."""
    try:
        claims = json.loads(base64url_decode(assertion.split(".")[1]))
    except (AttributeError, IndexError, ValueError, TypeError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


# -- the checks, in order -------------------------------------------------------------------------

def given_twice(request, name: str) -> bool:
    """The toolkit hands oauthlib one value per name, so the Django request is asked as well."""
    incoming = django_request(request)
    return name in request.duplicate_params or (incoming is not None and len(incoming.POST.getlist(name)) > 1)


def require_parameters(request) -> str:
    if any(given_twice(request, name) for name in PARAMETERS):
        raise InvalidRequest("client_assertion and client_assertion_type must each be given once.")
    if getattr(request, "client_assertion_type", None) != ASSERTION_TYPE:
        raise refuse(f"client_assertion_type must be {ASSERTION_TYPE}.")
    assertion = getattr(request, "client_assertion", None)
    if not isinstance(assertion, str) or not assertion or len(assertion) > MAX_ASSERTION_LENGTH:
        raise refuse("client_assertion must be a signed JWT.")
    return assertion


def read_header(assertion: str) -> tuple[JWS, dict]:
    """The parsed compact JWS and its protected header, with an acceptable `alg`."""
    token = JWS()
    try:
        if assertion.count(".") != 2:
            raise ValueError("not a compact JWS")
        token.deserialize(assertion)
        header = token.jose_header
    except (JWException, ValueError, TypeError, RecursionError):
        raise refuse("client_assertion must be a signed JWT (compact JWS).") from None
    if not isinstance(header, dict) or header.get("alg") not in SIGNING_ALGS:
        raise refuse("client_assertion must be signed with one of " + ", ".join(SIGNING_ALGS) + ".",
                     reason=f"assertion alg {str(header.get('alg'))[:20] if isinstance(header, dict) else '?'}")
    return token, header


def verify_signature(token: JWS, header: dict, client) -> dict:
    """Verify with the client's keys (one refetch for an unknown `kid`); the verified claims."""
    keyset = client_keys.keyset_for(client)
    kid = header.get("kid")
    if isinstance(kid, str) and not keyset.get_keys(kid):
        keyset = client_keys.keyset_for(client, refresh=True) or keyset
    token.allowed_algs = list(SIGNING_ALGS)
    try:
        token.verify(keyset, alg=header["alg"])
        claims = json.loads(token.payload)
    except (JWException, ValueError, TypeError, RecursionError):
        raise refuse("client_assertion signature does not verify with any key in the client's JWKS.",
                     reason=f"assertion signature refused for client {client.pk} (kid {str(kid)[:40]!r})") from None
    if not isinstance(claims, dict):
        raise refuse("client_assertion payload must be a JSON object.")
    return claims


def _number(claims: dict, name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refuse(f"client assertion {name} must be a NumericDate (seconds since the epoch).")
    return float(value)


def check_claims(claims: dict, client, request, now: float) -> None:
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise refuse("client assertion iss and sub must both be the client_id.")
    issuer = issuer_of(request)
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not issuer or not {issuer, f"{issuer}/oauth/token"} & {a for a in audiences if isinstance(a, str)}:
        raise refuse("client assertion audience must be the issuer or the token endpoint.")
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    if exp is None:
        raise refuse("client assertion exp is required.")
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise refuse("client assertion has expired.")
    if exp > now + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS or (iat is not None and exp - iat > MAX_LIFETIME_SECONDS):
        raise refuse(f"client assertion lifetime must be at most {MAX_LIFETIME_SECONDS} seconds (exp too far ahead).")
    if (iat is not None and iat > now + CLOCK_SKEW_SECONDS) or (nbf is not None and nbf > now + CLOCK_SKEW_SECONDS):
        raise refuse("client assertion iat or nbf is in the future.")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise refuse(f"client assertion jti is required (a string of at most {MAX_JTI_LENGTH} characters).")


def jti_key(client, jti: str) -> str:
    digest = hashlib.sha256(f"{client.client_id}\n{jti}".encode()).hexdigest()
    return f"pkjwt:jti:{client.project_id}:{digest}"


def spend_jti(client, claims: dict, now: float) -> None:
    """RFC 7523 §3 item 7: a jti is accepted once, and remembered until the assertion expires."""
    seconds = max(1, int(claims["exp"] - now) + CLOCK_SKEW_SECONDS + 1)
    if not cache.add(jti_key(client, claims["jti"]), 1, seconds):
        raise refuse("client assertion jti has already been used; sign a new assertion for each request.",
                     reason=f"assertion jti replayed for client {client.pk}")


class PrivateKeyJwt:
    """The `private_key_jwt` entry of `oauth.clients.auth.CLIENT_AUTH_METHODS`."""

    name = "private_key_jwt"
    holds_secret = False
    needs_keys = True
    signing_algs = SIGNING_ALGS
    accepted_as: tuple[str, ...] = ()

    def presented(self, request) -> bool:
        return any(getattr(request, name, None) is not None for name in PARAMETERS)

    def claimed_client_id(self, request) -> str | None:
        """RFC 7523 §3: `client_id` is optional; the assertion's `sub` names the client."""
        if request.client_id:
            return request.client_id
        sub = unverified_claims(getattr(request, "client_assertion", None)).get("sub")
        return sub if isinstance(sub, str) else None

    def authenticate(self, client, request) -> bool:
        assertion = require_parameters(request)
        token, header = read_header(assertion)
        claims = verify_signature(token, header, client)
        now = time.time()
        check_claims(claims, client, request, now)
        spend_jti(client, claims, now)
        return True
