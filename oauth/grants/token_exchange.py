"""Token exchange (RFC 8693) at the token endpoint.

`grant_type=urn:ietf:params:oauth:grant-type:token-exchange` at `{issuer}/oauth/token`: the
subject token is an access token of this project; the result may narrow the scope and retarget
the audience within the project's resources, never widen, never outlive the subject token, and
carries `act` (§4.1) when a client other than the subject token's exchanges it. (The mcpauth
trusted-subject exchange, `POST {issuer}/api/oauth/token/exchange`, is `oauth.endpoints.exchange`.)
"""

import json
from typing import Any

from django.utils import timezone
from oauthlib.oauth2.rfc6749 import errors as oauthlib_errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from oauth import grants
from oauth.backend import project_of
from oauth.errors import InvalidRequest, InvalidScope, UnauthorizedClient
from oauth.models import AccessToken, Application
from oauth.tokens import dpop
from oauth.tokens import issue as tokens

GRANT_TYPE = grants.TOKEN_EXCHANGE
ACCESS_TOKEN_TYPE = tokens.ACCESS_TOKEN_TYPE


# --- RFC 8693 at the token endpoint ---------------------------------------------------------------
def require_token_types(request) -> None:
    """§2.1: subject_token_type is required; we exchange access tokens for access tokens."""
    if not getattr(request, "subject_token", None) or getattr(request, "subject_token_type", None) != ACCESS_TOKEN_TYPE:
        raise InvalidRequest("subject_token must be an access token of this issuer.",
                             reason="missing subject_token or unsupported subject_token_type")
    requested = getattr(request, "requested_token_type", None)
    if requested not in (None, "", ACCESS_TOKEN_TYPE):
        raise InvalidRequest("Only access tokens can be requested.", reason="requested_token_type")
    if getattr(request, "actor_token", None):
        raise InvalidRequest("actor_token is not supported; the authenticated client is the actor.")


def load_subject(request) -> AccessToken:
    """§2.2.2: an invalid subject token is `invalid_request`."""
    subject = tokens.live_access_token(project_of(request), request.subject_token)
    if subject is None:
        raise InvalidRequest("The subject_token is not valid.", reason="unknown, expired or foreign subject token")
    client = request.client
    if subject.application_id != client.pk and client.client_type != Application.CLIENT_CONFIDENTIAL:
        raise UnauthorizedClient("Only confidential clients may exchange another client's tokens.")
    return subject


def narrow_scope(request, subject: AccessToken) -> list[str]:
    held = subject.scope.split()
    if not request.scope:
        return held
    wanted = request.scope.split()
    if not set(wanted).issubset(held):
        raise InvalidScope("The requested scope exceeds the subject token's.")
    return wanted


def act_claim(request, subject: AccessToken) -> dict[str, Any]:
    """§4.1: when another client exchanges, it becomes the current actor (prior actors nest)."""
    claims: dict[str, Any] = {}
    if subject.user is None:
        claims["sub"] = tokens.subject_for(subject.application, None, subject.claims)
    if subject.application_id != request.client.pk:
        act: dict[str, Any] = {"sub": request.client.client_id}
        if subject.claims.get("act"):
            act["act"] = subject.claims["act"]
        claims["act"] = act
    elif subject.claims.get("act"):
        claims["act"] = subject.claims["act"]
    return claims


class TokenExchangeGrant(GrantTypeBase):
    """oauthlib grant for RFC 8693; errors of our own checks are rendered by `oauth_endpoint`."""

    def create_token_response(self, request, token_handler):
        headers = dict(grants.TOKEN_RESPONSE_HEADERS)
        try:
            self.validate_client_authentication(request)
        except oauthlib_errors.OAuth2Error as e:
            headers.update(e.headers)
            return headers, e.json, e.status_code
        self.validate_token_request(request)
        dpop.bind(request)  # RFC 9449 §5: a proof binds the new token to the client's key
        token = dpop.token_type(token_handler.create_token(request, refresh_token=False))
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.request_validator.save_token(token, request)
        return headers, json.dumps(token), 200

    def validate_token_request(self, request) -> None:
        require_token_types(request)
        subject = load_subject(request)
        request.scopes = narrow_scope(request, subject)
        requested = tokens.requested_resources(request)
        # Retarget within the project's resources, or keep the subject token's audience.
        keep = not requested and subject.resource
        request.audience = list(subject.resource) if keep else tokens.resolve_audience(project_of(request), requested, None)
        request.user = subject.user
        request.token_claims = act_claim(request, subject)
        request.expires_in_cap = int((subject.expires - timezone.now()).total_seconds())


def factory(request_validator) -> TokenExchangeGrant:
    return TokenExchangeGrant(request_validator)
