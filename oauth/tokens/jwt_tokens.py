"""RFC 9068 JWT access tokens: ES256, signed with the project's current key, `kid` in the header.

Claims: `iss`, `aud` (the resource), `sub`, `client_id`, `scope`, `exp`, `iat`, `jti`, and `act`
after an RFC 8693 exchange by another client. The database keeps only the token's checksum (as
for opaque tokens), so revocation and introspection work the same for both formats.
"""

import json
import secrets
from typing import Any

from jwcrypto import jwk, jws, jwt
from jwcrypto.common import JWException, base64url_decode

from projects.models import SigningKey

TYP = "at+jwt"  # RFC 9068 §2.1


def encode(project, claims: dict[str, Any], *, alg: str = "ES256", typ: str = TYP) -> str:
    """Sign `claims` (plus a fresh `jti` unless given) with the project's current key for `alg`
    (ES256 for access tokens; ID tokens may ask for RS256)."""
    key = SigningKey.current(project, alg)
    claims = {**claims}
    claims.setdefault("jti", secrets.token_urlsafe(16))
    header = {"alg": alg, "typ": typ, "kid": key.kid}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key.private_jwk())
    return token.serialize()


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("mcp")


def verify(project, token: str, algs: tuple[str, ...] = ("ES256",)) -> dict[str, Any] | None:
    """The claims of `token` if one of the project's published keys signed it (in one of `algs`), else None.

    Used by tests and resource servers in-process; introspection trusts the stored checksum.
    """
    try:
        parsed = jws.JWS()
        parsed.deserialize(token)
        kid = parsed.jose_header.get("kid")
        row = SigningKey.objects.published(project).filter(kid=kid, alg__in=algs).first()
        if row is None:
            return None
        checked = jwt.JWT(jwt=token, key=jwk.JWK(**row.public_jwk), algs=[row.alg], expected_type="JWS")
        return json.loads(checked.claims)
    except (JWException, ValueError, TypeError):
        return None


def jti_of(token: str) -> str | None:
    """The `jti` of a JWT access token this server just signed (its payload read, not verified:
    only for tokens we minted), else None (an opaque token)."""
    if not looks_like_jwt(token):
        return None
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64url_decode(payload))
    except (ValueError, TypeError):
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) else None
