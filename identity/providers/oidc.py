"""OpenID Connect upstreams (OpenID Connect Core 1.0 §3.1, Discovery 1.0): any issuer, Google, and
Microsoft Entra ID (v2.0 endpoints, one tenant or `common`).

The discovery document and the JWKS are read through identity.http (outbound, shared cache). The ID
token is decoded by joserfc against the discovered keys and its claims validated by Authlib's
`CodeIDToken`: `iss`, `aud` (our client id), `exp`, `iat`, `nonce` (always sent, so always
required), `azp`, `at_hash`.
"""

from authlib.oidc.core import CodeIDToken
from django.conf import settings
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from identity.http import UpstreamError, cached_json
from identity.providers.base import Leg, Profile, Provider, UpstreamRefused

# Asymmetric signatures only: an ID token MACed with our own client secret proves nothing about keys.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60


class Oidc(Provider):
    kind = "oidc"
    scopes = ("openid", "email", "profile")

    def issuer(self) -> str:
        return self.row.issuer.rstrip("/")

    def metadata(self) -> dict:
        """The issuer's discovery document; its `issuer` must be the one configured (Discovery §4.3)."""
        document = cached_json(self.issuer() + "/.well-known/openid-configuration")
        if not isinstance(document.get("issuer"), str) or not self.discovered_issuer_ok(document["issuer"]):
            raise UpstreamRefused(f"discovery issuer {document.get('issuer')!r} is not {self.issuer()!r}")
        return document

    def discovered_issuer_ok(self, issuer: str) -> bool:
        return issuer == self.issuer()

    def authorization_endpoint(self) -> str:
        return self._endpoint("authorization_endpoint")

    def token_endpoint(self) -> str:
        return self._endpoint("token_endpoint")

    def _endpoint(self, name: str) -> str:
        value = self.metadata().get(name)
        if not isinstance(value, str) or not value.startswith("https://"):
            raise UpstreamRefused(f"discovery has no https {name}")
        return value

    def extra_params(self, leg: Leg) -> dict[str, str]:
        return {"nonce": leg.nonce}

    def check_issuer_parameter(self, iss: str | None) -> None:
        metadata = self.metadata()
        if iss is None:
            # RFC 9207 §2.4: a server that says it sends `iss` must have sent it.
            if metadata.get("authorization_response_iss_parameter_supported") is True:
                raise UpstreamRefused("the authorization response lacks iss")
            return
        if not self.issuer_matches(iss, metadata["issuer"]):
            raise UpstreamRefused(f"authorization response iss {iss!r} is not the upstream's")

    def issuer_matches(self, iss: str, discovered: str) -> bool:
        return iss == discovered

    def profile(self, token: dict, leg: Leg) -> Profile:
        claims = self.id_token_claims(token, leg)
        return Profile(subject=str(claims["sub"]), email=str(claims.get("email") or ""),
                       email_verified=claims.get("email_verified") is True, name=str(claims.get("name") or ""),
                       claims=dict(claims))

    def id_token_claims(self, token: dict, leg: Leg) -> dict:
        """The ID token, signature checked against the discovered keys and claims validated."""
        if not isinstance(token.get("id_token"), str):
            raise UpstreamRefused("the token response has no id_token")
        metadata = self.metadata()
        decoded = self._decode(token["id_token"], metadata)
        claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"essential": True, "value": self.token_issuer(decoded.claims, metadata)}},
                             {"nonce": leg.nonce, "client_id": self.row.client_id, "access_token": token["access_token"]})
        try:
            claims.validate(leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise UpstreamRefused(f"ID token refused: {exc.__class__.__name__}: {exc}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise UpstreamRefused("ID token without a sub")
        return dict(claims)

    def token_issuer(self, claims: dict, metadata: dict) -> str:
        """The `iss` this ID token must carry."""
        return metadata["issuer"]

    def _decode(self, id_token: str, metadata: dict):
        uri = metadata.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith("https://"):
            raise UpstreamRefused("discovery has no https jwks_uri")
        supported = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in supported if a in ALGORITHMS] or ["RS256"])
        for refresh in (False, True):  # a key rotated in since we cached the set: fetch it once more
            try:
                keys = KeySet.import_key_set(cached_json(uri, refresh=refresh))
                return jwt.decode(id_token, keys, registry=registry)
            except JoseError as exc:
                failure = exc
            except (ValueError, TypeError, KeyError) as exc:
                raise UpstreamError(f"the upstream's JWKS is malformed: {exc}") from None
        raise UpstreamRefused(f"ID token signature refused: {failure.__class__.__name__}: {failure}")


class Google(Oidc):
    """Google's OpenID Connect (accounts.google.com); the endpoint is in settings for tests' stand-ins."""

    kind = "google"

    def issuer(self) -> str:
        return settings.IDENTITY_UPSTREAMS["google"]["issuer"]

    def token_issuer(self, claims: dict, metadata: dict) -> str:
        # Google's ID tokens say `accounts.google.com` or `https://accounts.google.com` (its docs).
        if claims.get("iss") == "accounts.google.com" and metadata["issuer"] == "https://accounts.google.com":
            return "accounts.google.com"
        return metadata["issuer"]


class Microsoft(Oidc):
    """Microsoft Entra ID, v2.0 endpoints: `{base}/{tenant}/v2.0`, tenant `common` (any work, school or
    personal account), `organizations`, `consumers`, or one tenant. The multi-tenant discovery
    document names its issuer with a `{tenantid}` placeholder; each ID token's `iss` must be that
    template with the token's own `tid` (Microsoft's documented issuer validation)."""

    kind = "microsoft"
    TEMPLATE = "{tenantid}"

    def issuer(self) -> str:
        tenant = self.row.issuer or "common"
        return settings.IDENTITY_UPSTREAMS["microsoft"]["issuer"].format(tenant=tenant)

    def discovered_issuer_ok(self, issuer: str) -> bool:
        # The tenant in the URL may be a domain name or `common`; the document names the tenant by
        # its id (or the `{tenantid}` template), under the same base.
        base = settings.IDENTITY_UPSTREAMS["microsoft"]["issuer"].split("{tenant}")[0]
        return issuer.startswith(base)

    def token_issuer(self, claims: dict, metadata: dict) -> str:
        issuer = metadata["issuer"]
        if self.TEMPLATE in issuer:
            tid = claims.get("tid")
            if not isinstance(tid, str) or not tid:
                raise UpstreamRefused("a multi-tenant ID token without tid")
            return issuer.replace(self.TEMPLATE, tid)
        return issuer

    def issuer_matches(self, iss: str, discovered: str) -> bool:
        if self.TEMPLATE not in discovered:
            return iss == discovered
        head, _, tail = discovered.partition(self.TEMPLATE)
        return iss.startswith(head) and iss.endswith(tail) and "/" not in iss[len(head):len(iss) - len(tail)]
