"""`GET /metrics`: Prometheus metrics in the standard text format (`infra.metrics`), for a scraper
holding `METRICS_TOKEN` as a Bearer token; 404 when METRICS_TOKEN is unset (the endpoint is off).

Answered by `mcpauth_service.health.ProbeMiddleware`, like the probes, before anything that asks the
database or Redis: a scrape works while they are down, which is when it matters.
"""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from infra import metrics as instruments

CHALLENGE = 'Bearer realm="metrics"'


def presented_token(request: HttpRequest) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    if not expected:
        return JsonResponse({"error": "not_found", "error_description": "Not found."}, status=404)
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "invalid_request", "error_description": "Method not allowed."}, status=405)
        response["Allow"] = "GET, HEAD"
        return response
    # RFC 6750 §3: no credential → the challenge alone; a wrong one → invalid_token. Constant time.
    token = presented_token(request)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        challenge = CHALLENGE + (', error="invalid_token"' if token else "")
        response = JsonResponse({"error": "invalid_token", "error_description": "A valid metrics token is required."},
                                status=401)
        response["WWW-Authenticate"] = challenge
        response["Cache-Control"] = "no-store"
        return response
    response = HttpResponse(instruments.exposition(), content_type=instruments.CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
