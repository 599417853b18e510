"""JWT bearer grant (RFC 7523 §2.1) for Identity Assertion JWT Authorization Grants (ID-JAG).

draft-ietf-oauth-identity-assertion-authz-grant; MCP ext-auth enterprise-managed-authorization.
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with `assertion` at `{issuer}/oauth/token`:
a company's identity provider, trusted by the project (`enterprise.models.TrustedIssuer`), vouches
for one of its people using one client at one of the project's resources. The endpoint is a list
of named checks, in this order, each refusing with one RFC error:

1. `require_assertion`: one `assertion` parameter (`invalid_request`, RFC 7521 §4.1.1);
2. `require_grant`: the authenticated client registered this grant (`unauthorized_client`);
3. `read_header`: a compact JWS, `typ` `oauth-id-jag+jwt` (RFC 8725 §3.11), `alg` asymmetric;
4. `trusted_issuer`: `iss` is a trusted issuer of this project, allowing this client;
5. `verify_signature`: with that issuer's keys and algorithms (jwcrypto; one JWKS refetch for an
   unknown `kid`), never `none`, never HMAC, so a public key can never serve as an HMAC secret;
6. `check_claims`: `aud` is exactly our issuer, `client_id` the authenticated client, `sub`
   present, `exp`/`iat`/`nbf` within CLOCK_SKEW_SECONDS and MAX_LIFETIME_SECONDS, `jti` present;
7. `bind_resource`: the `resource` claim is one of the project's resources (`invalid_grant`), a
   `resource` parameter is served and covered by the claim (`invalid_target`, RFC 8707);
8. `grant_scopes`: requested ∩ the assertion's `scope` ∩ what the issuer and the client may get;
   a requested scope beyond the policy or the assertion is `invalid_scope` (step-up refused cleanly);
9. `end_user`: (`iss`, `sub`) linked to our end user: by the link, else the end user with the
   assertion's (verified) email, else a new one when the issuer provisions (`invalid_grant`);
10. `spend_jti`: single use until the assertion expires, through `cache.add` on the shared cache,
   so of two workers given the same assertion exactly one accepts it (RFC 7523 §3 item 7).

Assertion defects are `invalid_grant` (RFC 7523 §3.1); client authentication `invalid_client`.
The access token is audience-bound to the resource, its `sub` our end user's; it remembers the
assertion's issuer (`assertion_iss`, shown by introspection and the audit log). No refresh token
unless the trusted issuer allows one: the client presents a fresh ID-JAG instead.
"""

import hashlib
import json
import math
import time
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from jwcrypto.common import JWException
from jwcrypto.jws import JWS
from oauthlib.oauth2.rfc6749 import errors as oauthlib_errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from enterprise.models import ALLOWED_ALGORITHMS, EnterpriseIdentity, TrustedIssuer
from oauth.backend import django_request, issuer_of, project_of
from oauth.clients.private_key_jwt import given_twice, unverified_claims
from oauth.clients.scopes import allowed_scopes
from oauth.errors import InvalidGrant, InvalidRequest, InvalidScope, UnauthorizedClient
from oauth.grants import TOKEN_RESPONSE_HEADERS, issuer_keys
from oauth.models import Application
from oauth.tokens import dpop
from oauth.tokens import issue as tokens
from projects.models import AuditEvent, User

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ID_JAG_TYP = "oauth-id-jag+jwt"
CLOCK_SKEW_SECONDS = 30
MAX_LIFETIME_SECONDS = 600
MAX_ASSERTION_LENGTH = 16 * 1024
MAX_CLAIM_LENGTH = 255


def refuse(description: str, reason: str = "") -> InvalidGrant:
    return InvalidGrant(description, reason=reason or description)


# -- the checks, in order -------------------------------------------------------------------------

def require_assertion(request) -> str:
    if given_twice(request, "assertion"):
        raise InvalidRequest("assertion must be given once.")
    assertion = getattr(request, "assertion", None)
    if not isinstance(assertion, str) or not assertion:
        raise InvalidRequest("assertion is required: the ID-JAG issued by your identity provider.")
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise refuse(f"assertion must be at most {MAX_ASSERTION_LENGTH} characters.")
    return assertion


def require_grant(client: Application) -> None:
    if client.client_type != Application.CLIENT_CONFIDENTIAL or GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient(f"This client is not registered for {GRANT_TYPE}; register it as a confidential "
                                 "client with that grant type.")


def _typ_ok(typ: Any) -> bool:
    """RFC 7515 §4.1.9: media types compare case-insensitively, `application/` may be left out."""
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ in (ID_JAG_TYP, f"application/{ID_JAG_TYP}")


def read_header(assertion: str) -> tuple[JWS, dict]:
    token = JWS()
    try:
        if assertion.count(".") != 2:
            raise ValueError("not a compact JWS")
        token.deserialize(assertion)
        header = token.jose_header
    except (JWException, ValueError, TypeError, RecursionError):
        raise refuse("assertion must be a signed JWT (compact JWS).") from None
    if not isinstance(header, dict):
        raise refuse("assertion must be a signed JWT (compact JWS).")
    if not _typ_ok(header.get("typ")):
        raise refuse(f"assertion must be an ID-JAG: its typ header must be {ID_JAG_TYP}.",
                     reason=f"assertion typ {str(header.get('typ'))[:40]!r}")
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise refuse("assertion must be signed with an asymmetric algorithm (" + ", ".join(ALLOWED_ALGORITHMS) + ").",
                     reason=f"assertion alg {str(header.get('alg'))[:20]!r}")
    return token, header


def unverified_issuer(assertion: str) -> str:
    """The payload's `iss`, NOT verified: only to find whose keys verify the signature."""
    iss = unverified_claims(assertion).get("iss")
    if not isinstance(iss, str) or not iss:
        raise refuse("assertion iss is required: the identity provider's issuer URL.")
    return iss


def trusted_issuer(project, iss: str, client: Application) -> TrustedIssuer:
    trusted = TrustedIssuer.objects.of(project).filter(issuer=iss[:2000]).first()
    if trusted is None:
        raise refuse("assertion iss is not an identity provider this project trusts.",
                     reason=f"untrusted assertion issuer {iss[:200]!r}")
    if not trusted.allows_client(client.client_id):
        raise refuse("This client may not present assertions of this identity provider.",
                     reason=f"client {client.pk} not allowed by trusted issuer {trusted.pk}")
    return trusted


def verify_signature(token: JWS, header: dict, trusted: TrustedIssuer) -> dict:
    algorithms = [a for a in trusted.algorithms if a in ALLOWED_ALGORITHMS]
    if header["alg"] not in algorithms:
        raise refuse(f"assertion alg must be one of {', '.join(algorithms)} for this identity provider.")
    keyset = issuer_keys.keyset_for(trusted)
    kid = header.get("kid")
    if isinstance(kid, str) and not keyset.get_keys(kid):  # a key rolled over at the IdP
        keyset = issuer_keys.keyset_for(trusted, refresh=True) or keyset
    token.allowed_algs = algorithms
    try:
        token.verify(keyset, alg=header["alg"])
        claims = json.loads(token.payload)
    except (JWException, ValueError, TypeError, RecursionError):
        raise refuse("assertion signature does not verify with the identity provider's keys.",
                     reason=f"assertion signature refused for trusted issuer {trusted.pk} "
                            f"(kid {str(kid)[:40]!r})") from None
    if not isinstance(claims, dict):
        raise refuse("assertion payload must be a JSON object.")
    return claims


def _number(claims: dict, name: str, required: bool = True) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refuse(f"assertion {name} is required as a NumericDate (seconds since the epoch)."
                     if required else f"assertion {name} must be a NumericDate (seconds since the epoch).")
    return float(value)


def _string(claims: dict, name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_LENGTH:
        raise refuse(f"assertion {name} is required (a string of at most {MAX_CLAIM_LENGTH} characters).")
    return value


def check_audience(claims: dict, issuer: str) -> None:
    """ext-auth §5.1: `aud` MUST identify our issuer: that exact string (alone in an array)."""
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not issuer or aud != issuer:
        raise refuse(f"assertion aud must be this authorization server's issuer, {issuer}.")


def check_times(claims: dict, now: float) -> None:
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf", required=False)
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise refuse("assertion has expired; ask the identity provider for a new one.")
    if iat > now + CLOCK_SKEW_SECONDS or (nbf is not None and nbf > now + CLOCK_SKEW_SECONDS):
        raise refuse("assertion iat or nbf is in the future.")
    if exp - iat > MAX_LIFETIME_SECONDS or exp > now + MAX_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise refuse(f"assertion lifetime must be at most {MAX_LIFETIME_SECONDS} seconds.")


def check_claims(claims: dict, request, now: float) -> None:
    check_audience(claims, issuer_of(request))
    if claims.get("client_id") != request.client.client_id:
        raise refuse("assertion client_id must be the authenticated client's client_id.",
                     reason=f"assertion client_id {str(claims.get('client_id'))[:80]!r} for client {request.client.pk}")
    _string(claims, "sub")
    check_times(claims, now)
    _string(claims, "jti")


def bind_resource(claims: dict, request) -> list[str]:
    """ext-auth §4.3: `resource` (REQUIRED) names the MCP server; the token's audience is it."""
    project = project_of(request)
    resource = claims.get("resource")
    if not isinstance(resource, str) or resource not in project.resources:
        raise refuse("assertion resource must be one of this project's resources.",
                     reason=f"assertion resource {str(resource)[:200]!r}")
    return tokens.resolve_audience(project, tokens.requested_resources(request), [resource])


def _assertion_scopes(claims: dict) -> list[str] | None:
    scope = claims.get("scope")
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise refuse("assertion scope must be a space-separated string.")
    return scope.split()


def policy_scopes(trusted: TrustedIssuer, client: Application, project) -> list[str]:
    """What the issuer and the client may get: the client's scopes, within the issuer's list."""
    allowed = allowed_scopes(client, project)
    return [s for s in allowed if s in trusted.scopes] if trusted.scopes else allowed


def grant_scopes(claims: dict, trusted: TrustedIssuer, request) -> list[str]:
    policy = policy_scopes(trusted, request.client, project_of(request))
    asserted = _assertion_scopes(claims)
    requested = list(dict.fromkeys(request.scopes or []))
    if requested:
        beyond = [s for s in requested if s not in policy]
        if beyond:
            raise InvalidScope(f"Scope {beyond[0]} is not available to this client through this identity provider.")
        missing = [s for s in requested if asserted is not None and s not in asserted]
        if missing:
            raise InvalidScope(f"The assertion does not grant scope {missing[0]}; ask the identity provider "
                               "for an assertion that includes it.")
        return requested
    granted = [s for s in policy if asserted is None or s in asserted]
    if not granted:
        raise InvalidScope("The assertion grants no scope this client may get through this identity provider.")
    return granted


def _verified_email(claims: dict) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254 or claims.get("email_verified") is False:
        return ""
    return User.objects.normalize_email(email).lower()


def end_user(trusted: TrustedIssuer, claims: dict, request) -> User:
    """The end user (`iss`, `sub`) stands for: linked, else by verified email, else provisioned."""
    link = EnterpriseIdentity.objects.select_related("user").filter(trusted_issuer=trusted,
                                                                    subject=claims["sub"]).first()
    if link is not None:
        if not link.user.is_active:
            raise refuse("This person's account is disabled.", reason=f"end user {link.user_id} inactive")
        return link.user
    project = trusted.project
    email = _verified_email(claims)
    user = User.objects.filter(project=project, email=email).first() if email else None
    if user is None and not trusted.provision:
        raise refuse("This person has no account in this project, and the identity provider does not provision "
                     "new ones.", reason=f"unknown subject for trusted issuer {trusted.pk}")
    return _link(trusted, claims["sub"], user, email, request)


def _link(trusted: TrustedIssuer, subject: str, user: User | None, email: str, request) -> User:
    try:
        with transaction.atomic():
            provisioned = user is None
            if provisioned:
                user = User.objects.create_end_user(trusted.project, email=email)
            EnterpriseIdentity.objects.create(trusted_issuer=trusted, subject=subject, user=user)
            AuditEvent.record(trusted.project, "enterprise.identity_linked", client_id=request.client.client_id,
                              request=django_request(request), assertion_iss=trusted.issuer, user=user.subject,
                              provisioned=provisioned)
    except IntegrityError:  # linked (or the email taken) concurrently: the link that won
        link = EnterpriseIdentity.objects.select_related("user").filter(trusted_issuer=trusted, subject=subject).first()
        if link is None:
            raise refuse("This person's account could not be linked; try again.", reason="link race lost") from None
        return link.user
    if not user.is_active:
        raise refuse("This person's account is disabled.", reason=f"end user {user.pk} inactive")
    return user


def jti_key(trusted: TrustedIssuer, jti: str) -> str:
    digest = hashlib.sha256(f"{trusted.issuer}\n{jti}".encode()).hexdigest()
    return f"idjag:jti:{trusted.project_id}:{digest}"


def spend_jti(trusted: TrustedIssuer, claims: dict, now: float, request) -> None:
    seconds = max(1, int(claims["exp"] - now) + CLOCK_SKEW_SECONDS + 1)
    if not cache.add(jti_key(trusted, claims["jti"]), 1, seconds):
        # A replayed assertion may be a stolen one: the operator sees it in the audit log.
        AuditEvent.record(trusted.project, "token.assertion_replayed", client_id=request.client.client_id,
                          request=django_request(request), assertion_iss=trusted.issuer)
        raise refuse("assertion has already been used (its jti was seen before); ask the identity provider "
                     "for a new one.", reason=f"ID-JAG jti replayed for trusted issuer {trusted.pk}")


class JwtBearerGrant(GrantTypeBase):
    """oauthlib grant for ID-JAG; errors of our own checks are rendered by `oauth_endpoint`."""

    def create_token_response(self, request, token_handler):
        headers = dict(TOKEN_RESPONSE_HEADERS)
        try:
            self.validate_client_authentication(request)
        except oauthlib_errors.OAuth2Error as e:
            headers.update(e.headers)
            return headers, e.json, e.status_code
        trusted = self.validate_token_request(request)
        dpop.bind(request)  # RFC 9449 §5: a proof binds the new token to the client's key
        token = dpop.token_type(token_handler.create_token(request, refresh_token=trusted.refresh_tokens))
        self.request_validator.save_token(token, request)
        AuditEvent.record(trusted.project, "token.issued_for_assertion", client_id=request.client.client_id,
                          request=django_request(request), assertion_iss=trusted.issuer,
                          subject=request.user.subject, scope=token.get("scope", ""), resource=request.audience)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> TrustedIssuer:
        assertion = require_assertion(request)
        require_grant(request.client)
        token, header = read_header(assertion)
        trusted = trusted_issuer(project_of(request), unverified_issuer(assertion), request.client)
        claims = verify_signature(token, header, trusted)
        now = time.time()
        check_claims(claims, request, now)
        request.audience = bind_resource(claims, request)
        request.scopes = grant_scopes(claims, trusted, request)
        request.user = end_user(trusted, claims, request)
        spend_jti(trusted, claims, now, request)
        request.token_claims = {"assertion_iss": trusted.issuer}
        return trusted


def factory(request_validator) -> JwtBearerGrant:
    """The `GRANTS` entry's factory (`oauth.grants`)."""
    return JwtBearerGrant(request_validator)
