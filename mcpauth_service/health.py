"""Liveness (`/healthz`) and readiness (`/readyz`: the database and the cache/broker answer)."""

import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger("mcpauth.health")


def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("readiness: database check failed", exc_info=True)
        return False


def _cache_ok() -> bool:
    probe = secrets.token_hex(8)
    try:
        cache.set("readyz:probe", probe, 10)
        return cache.get("readyz:probe") == probe
    except Exception:
        logger.warning("readiness: cache check failed", exc_info=True)
        return False


def readyz(request):
    cache_name = "redis" if settings.REDIS_URL else "cache"
    checks = {"database": _database_ok(), cache_name: _cache_ok()}
    failed = [name for name, ok in checks.items() if not ok]
    body = {"status": "unavailable" if failed else "ready", "checks": {k: "ok" if v else "failed" for k, v in checks.items()}}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    response["Cache-Control"] = "no-store"
    return response
