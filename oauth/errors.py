"""OAuth errors: one class per RFC error code, each knowing its status; rendered in one place.

The public `error_description` says little; the private `reason` goes to the log only.
"""

import logging

from django.http import JsonResponse

from infra.observe import refused
from mcpauth_service.errors import RETRY_AFTER_SECONDS, UNAVAILABLE_DESCRIPTION

logger = logging.getLogger("mcpauth.oauth")


class OAuthError(Exception):
    error = "server_error"
    status = 400
    description = ""

    def __init__(self, description: str = "", *, reason: str = "", headers: dict[str, str] | None = None):
        super().__init__(description or self.description)
        self.description = description or self.description
        self.reason = reason
        self.headers = dict(headers or {})

    def payload(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body

    def as_response(self) -> JsonResponse:
        if self.reason:
            logger.info("%s: %s", self.error, self.reason)
        refused(self.error)
        response = JsonResponse(self.payload(), status=self.status)
        response["Cache-Control"] = "no-store"
        for name, value in self.headers.items():
            response[name] = value
        return response


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: 401 when client authentication failed."""

    error = "invalid_client"
    status = 401
    description = "Client authentication failed."


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is not one this issuer serves."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer credential is missing, unknown, revoked or lacks permission."""

    error = "invalid_token"
    status = 401
    description = "The access token is missing, invalid or not permitted here."

    def __init__(self, description: str = "", **kwargs):
        super().__init__(description, **kwargs)
        self.headers.setdefault("WWW-Authenticate", f'Bearer error="invalid_token", error_description="{self.description}"')


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class NotFound(OAuthError):
    error = "not_found"
    status = 404
    description = "Not found."


class MethodNotAllowed(OAuthError):
    error = "invalid_request"
    status = 405
    description = "Method not allowed."


class TooManyRequests(OAuthError):
    """429 with `Retry-After` (and, from infra.ratelimit, the RateLimit header fields). No RFC
    names this error; `rate_limited` is the code the management API and the metrics use too."""

    error = "rate_limited"
    status = 429
    description = "Too many requests; retry later."

    def __init__(self, retry_after: int, description: str = "", **kwargs):
        super().__init__(description, **kwargs)
        self.headers["Retry-After"] = str(max(1, int(retry_after)))

    @classmethod
    def from_limit(cls, limited) -> "TooManyRequests":
        """The OAuth rendering of `infra.ratelimit.RateLimited`."""
        return cls(limited.retry_after, headers=limited.headers, reason=limited.reason)


class ServerError(OAuthError):
    error = "server_error"
    status = 500
    description = "The server could not complete the request."


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1's code, with 503 and `Retry-After`: a dependency (database, Redis) is down."""

    error = "temporarily_unavailable"
    status = 503
    description = UNAVAILABLE_DESCRIPTION

    def __init__(self, description: str = "", **kwargs):
        super().__init__(description, **kwargs)
        self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
