"""The one decorator for JSON endpoints we own: methods, CORS, caching, and error rendering."""

import functools
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from mcpauth_service.errors import is_outage

from .errors import InvalidRequest, MethodNotAllowed, OAuthError, ServerError, TemporarilyUnavailable

logger = logging.getLogger("mcpauth.oauth")

CORS_ALLOW_HEADERS = "Authorization, Content-Type, MCP-Protocol-Version"
CORS_EXPOSE_HEADERS = "WWW-Authenticate, Retry-After"


def add_cors(response: HttpResponse, methods: Iterable[str]) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
    response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    response["Access-Control-Max-Age"] = "86400"
    return response


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in a decoded JSON value holds NUL (PostgreSQL text cannot)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


def read_json_object(request) -> dict[str, Any]:
    """The request body as a JSON object, or `invalid_request` (never a 500 on odd input)."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    if contains_nul(body):
        raise InvalidRequest("Values must not contain NUL characters.")
    return body


def render_error(exc: Exception) -> HttpResponse:
    """Every error of an OAuth endpoint is rendered here; anything unexpected is a logged server_error."""
    if isinstance(exc, OAuthError):
        return exc.as_response()
    if is_outage(exc):  # the database or Redis is down: retry later, not a bug
        logger.warning("dependency unavailable (%s: %s)", type(exc).__name__, str(exc).strip()[:200])
        return TemporarilyUnavailable().as_response()
    logger.exception("unexpected error in OAuth endpoint")
    return ServerError().as_response()


def oauth_endpoint(methods: Iterable[str] = ("POST",), *, cors: bool = True, cache: str = "no-store"):
    """Wrap a view: answer OPTIONS preflights, refuse other methods with JSON 405, render errors.

    `cache` is the Cache-Control of success responses: token-bearing ones must be `no-store`.
    """
    allowed = tuple(m.upper() for m in methods)
    if "GET" in allowed and "HEAD" not in allowed:
        allowed = (*allowed, "HEAD")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "OPTIONS" and cors:
                return add_cors(HttpResponse(status=204), allowed)
            try:
                if request.method not in allowed:
                    raise MethodNotAllowed(headers={"Allow": ", ".join(allowed)})
                response = view(request, *args, **kwargs)
                if cache and not response.has_header("Cache-Control"):
                    response["Cache-Control"] = cache
            except Exception as exc:  # noqa: BLE001 - rendered as the RFC's JSON error
                response = render_error(exc)
            return add_cors(response, allowed) if cors else response

        return csrf_exempt(wrapper)

    return decorate
