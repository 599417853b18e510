"""Plain error responses: never a redirect, never a stack trace.

A dependency that is down (PostgreSQL refusing or dropping connections, Redis stopped or frozen)
is not a bug: such errors answer 503 with `Retry-After`, in the OAuth JSON shape for machine
routes and as a plain page for people (`unavailable`), and are logged without a trace in the body.
"""

import logging
import sys

from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.middleware import is_machine_route

logger = logging.getLogger("mcpauth.outage")

_API_PREFIXES = ("/p/", "/.well-known/", "/api/")
# The driver's "could not reach it" errors: connection refused, dropped, timed out, terminated; and
# Celery's broker unreachable when a request queues a task (an email to send).
OUTAGES = (DatabaseOperationalError, DatabaseInterfaceError, RedisConnectionError, RedisTimeoutError,
           BrokerOperationalError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DESCRIPTION = "The service is temporarily unavailable; retry later."


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGES)


def _wants_json(request) -> bool:
    return request.path.startswith(_API_PREFIXES) or getattr(request, "project", None) is not None


def _wants_page(request) -> bool:
    """People's pages (dashboard, sign-in, consent) get HTML; machine routes and the API get JSON."""
    path = request.path_info
    return not (is_machine_route(path) or path.startswith("/api/")) and "text/html" in request.META.get("HTTP_ACCEPT", "")


def unavailable(request, exc: BaseException) -> HttpResponse:
    """503 + Retry-After for a dependency outage; the detail goes to the log only."""
    logger.warning("%s %s: dependency unavailable (%s: %s)", request.method, request.path,
                   type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    if _wants_page(request):
        response = HttpResponse(render_to_string("errors/503.html"), status=503)
    else:
        response = JsonResponse({"error": "temporarily_unavailable", "error_description": UNAVAILABLE_DESCRIPTION},
                                status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    if is_machine_route(request.path_info):  # failed before the endpoint's own CORS (tenant lookup)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"error": "not_found", "error_description": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def server_error(request):
    """handler500: Django calls it while handling the exception, so `sys.exception()` is that exception."""
    exc = sys.exception()
    if is_outage(exc):
        return unavailable(request, exc)
    if _wants_json(request):
        return JsonResponse({"error": "server_error"}, status=500)
    return render(request, "errors/500.html", status=500)
