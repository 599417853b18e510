"""OpenID Connect Core 1.0 for projects that turn it on: ID tokens (§2, §3.1.3.6), claims (§5.1, §5.4).

Built on the toolkit's OIDC support and oauthlib's OpenID grants, per project instead of global:
the token endpoint routes a code whose scope holds `openid` to oauthlib's OpenID Connect code
grant (`AuthorizationTokenGrantDispatcher`), and refreshes through oauthlib's OpenID refresh grant
(§12.2: a new ID token, without `nonce`, with the original `auth_time`). `OpenIDConnectValidator`
answers the hooks those grants and the toolkit call (`get_authorization_code_scopes`,
`refresh_id_token`, `get_additional_claims`, `get_id_token_dictionary`, `finalize_id_token`,
`get_oidc_issuer_endpoint`, `validate_bearer_token`/`get_userinfo_claims` for userinfo) for the
request's project: its issuer, its keys (RS256 by default, ES256 for clients that registered
`id_token_signed_response_alg: ES256`), its end users' stable `sub`. Signing goes through the one
JOSE helper, `oauth.tokens.jwt_tokens`.

Scope claims: `name` with `profile`, `email` with `email`, each only when the end user has one;
with `email`, `email_verified` (§5.1): true once the end user opened a verification link (or the
operator vouched for the address, docs/configuration.md "Email"), false until then.
"""

import json
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from oauth2_provider.settings import oauth2_settings
from oauthlib.openid.connect.core.grant_types import AuthorizationCodeGrant as OpenIDAuthorizationCodeGrant
from oauthlib.openid.connect.core.grant_types import RefreshTokenGrant as OpenIDRefreshTokenGrant
from oauthlib.openid.connect.core.grant_types.dispatchers import AuthorizationTokenGrantDispatcher

from infra import rows
from oauth.backend import issuer_of, own, project_of
from oauth.clients.metadata import ID_TOKEN_ALGS
from oauth.errors import InvalidToken
from oauth.models import Grant
from oauth.tokens import issue as tokens
from oauth.tokens import jwt_tokens

DEFAULT_ID_TOKEN_ALG = "RS256"  # OpenID Connect Dynamic Client Registration §2: the default
ID_TOKEN_TYPE = "JWT"
PROMPT_VALUES = ["none", "login", "consent"]  # OpenID Connect Core §3.1.2.1, as honoured by oauth.authorize
# What an ID token or userinfo answer may carry (OpenID Connect Discovery §3 `claims_supported`).
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "jti", "name", "email",
          "email_verified"]


def enabled(project) -> bool:
    return project is not None and bool(project.openid)


def discovery_fields(project, issuer: str) -> dict[str, Any]:
    """OpenID Connect Discovery §3 fields of `project`'s metadata: none while OpenID Connect is off."""
    if not enabled(project):
        return {}
    return {
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
        "claims_supported": CLAIMS,
        "prompt_values_supported": PROMPT_VALUES,
        "request_parameter_supported": False,
        "claims_parameter_supported": False,
    }


def claims_of(user) -> dict[str, Any]:
    """The end user's claims that are true and known: stable `sub` (per project), `name`, `email`."""
    claims: dict[str, Any] = {"sub": user.subject}
    if user.name:
        claims["name"] = user.name
    if user.email:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified_at is not None
    return claims


def id_token_alg(client) -> str:
    """The client's registered `id_token_signed_response_alg`, else RS256."""
    metadata = client.metadata if isinstance(client.metadata, dict) else {}
    alg = metadata.get("id_token_signed_response_alg")
    return alg if alg in ID_TOKEN_ALGS else DEFAULT_ID_TOKEN_ALG


def auth_time_of(request) -> datetime | None:
    """When the end user authenticated, as the code or refresh token being redeemed recorded it."""
    if request.grant_type == "authorization_code":
        source = own(request, "grant_instance", None)
    else:
        source = own(request, "refresh_token_instance", None)
    return getattr(source, "auth_time", None)


def code_grant(validator, plain, **kwargs) -> AuthorizationTokenGrantDispatcher:
    """The token endpoint's `authorization_code` handler: oauthlib's dispatcher sends a code with
    `openid` in a project with OpenID Connect on (the validator's `get_authorization_code_scopes`
    decides) to oauthlib's OpenID code grant (made with `kwargs`, as `plain` was), else to `plain`."""
    openid = OpenIDAuthorizationCodeGrant(validator, **kwargs)
    return AuthorizationTokenGrantDispatcher(validator, default_grant=plain, oidc_grant=openid)


def refresh_grant(validator, **kwargs) -> OpenIDRefreshTokenGrant:
    """The `refresh_token` handler: oauthlib's OpenID refresh grant, which adds a new ID token when the
    validator's `refresh_id_token` says so (OpenID Connect Core §12.2) and is the plain one otherwise."""
    return OpenIDRefreshTokenGrant(validator, **kwargs)


class OpenIDConnectValidator:
    """Mixin for the project's OAuth2Validator: the toolkit's OIDC hooks, answered per project."""

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        """Toolkit hook: the code's row, with OpenID Connect's `nonce` and the end user's `auth_time`
        (set by oauth.authorize on the request it builds)."""
        Grant.objects.create(
            application=request.client, user=request.user, code=code["code"],
            expires=timezone.now() + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS),
            redirect_uri=request.redirect_uri, scope=" ".join(request.scopes),
            code_challenge=request.code_challenge or "", code_challenge_method=request.code_challenge_method or "",
            nonce=request.nonce or "", claims=json.dumps(request.claims or {}),
            resource=getattr(request, "resource", []), auth_time=getattr(request, "auth_time", None),
            dpop_jkt=getattr(request, "dpop_jkt", None) or "",
        )

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        """oauthlib's dispatcher asks whether a code is an OpenID Connect one: only in a project with
        OpenID Connect on (a project may have an own scope called `openid` and no ID tokens).

        The code's whole row is read (one compiled statement) and kept on the request as `code_row`:
        `AuthorizationCodeHooks.validate_code` uses it when it is the authenticated client's, instead
        of reading the same row again."""
        project = project_of(request)
        if not enabled(project) or not isinstance(code, str):
            return []
        grant = rows.select_one(Grant, deferred=("user",), code=code, application__project_id=project.pk)
        request.code_row = grant
        return grant.scope.split() if grant is not None and grant.scope else []

    def refresh_id_token(self, request):
        """OpenID Connect Core §12.2: a refresh answers with a new ID token when the grant has `openid`."""
        return enabled(project_of(request)) and "openid" in (request.scopes or [])

    def get_oidc_issuer_endpoint(self, request):
        return issuer_of(request)

    def get_additional_claims(self, request):
        return claims_of(request.user)

    def get_id_token_dictionary(self, token, token_handler, request):
        """The toolkit's claims (scope-filtered `get_oidc_claims`, `iss`, `exp`, `jti`), with the
        `auth_time` the code recorded (§2), not the toolkit's Django `last_login`."""
        claims, expires = super().get_id_token_dictionary(token, token_handler, request)
        claims.pop("auth_time", None)
        auth_time = auth_time_of(request)
        if auth_time is not None:
            claims["auth_time"] = int(auth_time.timestamp())
        return claims, expires

    def finalize_id_token(self, id_token, token, token_handler, request):
        """Sign the ID token with the project's key (oauthlib put in `aud`, `iat`, `nonce`, `at_hash`).

        Nothing is stored: an ID token is a statement to the client, never a credential here."""
        claims, _ = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(claims, aud=request.client.client_id)
        id_token["exp"] = id_token["iat"] + oauth2_settings.ID_TOKEN_EXPIRE_SECONDS  # counted from oauthlib's `iat`
        return jwt_tokens.encode(project_of(request), id_token, alg=id_token_alg(request.client), typ=ID_TOKEN_TYPE)

    def validate_bearer_token(self, token, scopes, request):
        """Userinfo (OpenID Connect Core §5.3): a live access token of this project for an end user.

        Its `resource` audience is not compared with the userinfo URL: the issuer itself answers, for
        the tokens it issued with `openid` (oauthlib then requires that scope: `insufficient_scope`)."""
        project = project_of(request)
        if not enabled(project) or not isinstance(token, str) or not token:
            return False
        row = tokens.live_access_token(project, token)
        if row is None or row.user is None:
            return False
        if row.claims.get("cnf"):  # RFC 9449 §7: a DPoP-bound token never works as a bearer token
            raise InvalidToken("This access token is DPoP-bound (RFC 9449); userinfo takes bearer tokens "
                               "only: call it with a token issued without a DPoP proof.")
        request.access_token, request.user, request.client = row, row.user, row.application
        request.scopes = row.scope.split()
        return True
