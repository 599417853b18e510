"""A DPoP client's side, for tests: a key pair and RFC 9449 §4.2 proofs signed with it (jwcrypto)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from jwcrypto import jwk, jwt

from mcpauth_rs.dpop import access_token_hash


class DpopKey:
    """One client key pair; `proof(...)` signs a proof for one request."""

    def __init__(self, kty: str = "EC", alg: str = "ES256"):
        self.key = jwk.JWK.generate(kty=kty, crv="P-256") if kty == "EC" else jwk.JWK.generate(kty=kty, size=2048)
        self.alg = alg

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None,
              iat: float | None = None, jti: str | None = None, header: dict[str, Any] | None = None,
              claims: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": method, "htu": url,
                                "iat": int(time.time() if iat is None else iat)}
        if access_token is not None:
            body["ath"] = access_token_hash(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.export_public(as_dict=True), **(header or {})}
        token = jwt.JWT(header=head, claims={**body, **(claims or {})})
        token.make_signed_token(self.key)
        return token.serialize()
