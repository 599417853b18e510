"""The one decorator for JSON endpoints we own: methods, strict parsing, CORS, caching, error rendering."""

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from infra.ratelimit import RateLimited
from mcpauth_service.errors import is_outage
from oauth.endpoints.parsing import FORM_BODY, NO_BODY, Body, check_request, decode_json
from oauth.errors import MethodNotAllowed, OAuthError, ServerError, TemporarilyUnavailable, TooManyRequests

logger = logging.getLogger("mcpauth.oauth")

CORS_ALLOW_HEADERS = "Authorization, Content-Type, MCP-Protocol-Version, DPoP"
CORS_EXPOSE_HEADERS = "WWW-Authenticate, Retry-After, RateLimit, RateLimit-Policy, DPoP-Nonce"


def add_cors(response: HttpResponse, methods: Iterable[str], *, preflight: bool = False) -> HttpResponse:
    """CORS `*`. Browsers read Allow-Methods, Allow-Headers and Max-Age on a preflight's answer only
    (Fetch standard, "CORS-preflight fetch"), so an actual answer carries the two headers they read
    there: who may read it and which of its headers a page may see."""
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    if preflight:
        response["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
        response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        response["Access-Control-Max-Age"] = "86400"
    return response


def read_json_object(request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is `{}`), by the rules of `oauth.endpoints.parsing`."""
    return decode_json(request.body) if request.body else {}


def render_error(exc: Exception) -> HttpResponse:
    """Every error of an OAuth endpoint is rendered here; anything unexpected is a logged server_error."""
    if isinstance(exc, RateLimited):
        exc = TooManyRequests.from_limit(exc)
    if isinstance(exc, OAuthError):
        return exc.as_response()
    if is_outage(exc):  # the database or Redis is down: retry later, not a bug
        logger.warning("dependency unavailable (%s: %s)", type(exc).__name__, str(exc).strip()[:200])
        return TemporarilyUnavailable().as_response()
    logger.exception("unexpected error in OAuth endpoint")
    return ServerError().as_response()


def oauth_endpoint(methods: Iterable[str] = ("POST",), *, cors: bool = True, cache: str = "no-store",
                   body: Body | None = None):
    """Wrap a view: answer OPTIONS preflights, refuse other methods with JSON 405, refuse what
    `oauth.endpoints.parsing` refuses (415, 413, 400) before the view reads the request, render errors.

    `cache` is the Cache-Control of success responses: token-bearing ones must be `no-store`.
    `body` is what the endpoint accepts; by default a form body when it takes POST, PUT or PATCH.
    """
    allowed = tuple(m.upper() for m in methods)
    if "GET" in allowed and "HEAD" not in allowed:
        allowed = (*allowed, "HEAD")
    if body is None:
        body = FORM_BODY if {"POST", "PUT", "PATCH"} & set(allowed) else NO_BODY

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "OPTIONS" and cors:
                return add_cors(HttpResponse(status=204), allowed, preflight=True)
            try:
                if request.method not in allowed:
                    raise MethodNotAllowed(headers={"Allow": ", ".join(allowed)})
                check_request(request, body)
                response = view(request, *args, **kwargs)
                if cache and not response.has_header("Cache-Control"):
                    response["Cache-Control"] = cache
            except Exception as exc:  # noqa: BLE001 - rendered as the RFC's JSON error
                response = render_error(exc)
            return add_cors(response, allowed) if cors else response

        return csrf_exempt(wrapper)

    return decorate
