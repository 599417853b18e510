"""Liveness (`/healthz`: the process answers, nothing else is asked) and readiness (`/readyz`:
each dependency answers, within its connect and command timeouts).

Both are answered by `ProbeMiddleware` before tenancy, sessions or anything else that might touch
a dependency, so a stopped database or a frozen Redis never makes the liveness probe fail or hang.
"""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from infra.cache import redis_options

from .errors import RETRY_AFTER_SECONDS
from .metrics import metrics

logger = logging.getLogger("mcpauth.health")

_clients: dict[str, redis.Redis] = {}  # one client (and connection pool) per Redis URL per process


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    """`SELECT 1`; a connection the server dropped since (a restart) is replaced once, within
    DB_CONNECT_TIMEOUT, so the probe reports the database and not a stale connection."""
    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready"
            connection.close()
            if attempt == 2:
                logger.warning("readiness: database unavailable (%s: %s)", type(exc).__name__, exc)
    return False


def _redis_ok() -> bool:
    url = settings.REDIS_URL
    try:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url, **redis_options())
        return client.ping() is True
    except Exception as exc:  # noqa: BLE001
        logger.warning("readiness: Redis unavailable (%s: %s)", type(exc).__name__, exc)
        return False


def readyz(request):
    checks = {"database": _database_ok()}
    if settings.REDIS_URL:
        checks["redis"] = _redis_ok()
    failed = [name for name, ok in checks.items() if not ok]
    body = {"status": "unavailable" if failed else "ready", "checks": {k: "ok" if v else "failed" for k, v in checks.items()}}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    if failed:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ProbeMiddleware:
    """First in MIDDLEWARE: `/healthz`, `/readyz` (and `/metrics`) are answered before anything that could touch
    the database or Redis (custom-domain lookup, sessions), so liveness never depends on them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/healthz":
            return healthz(request)
        if request.path_info == "/readyz":
            return readyz(request)
        if request.path_info == "/metrics":
            return metrics(request)
        return self.get_response(request)
