"""Every request observed once: a request id, a Prometheus count and latency, one log line.

`RequestObservation` sits right after the probes in MIDDLEWARE (probes and `/metrics` scrapes are
neither counted nor logged). It names the request by its route (`oauth:token`; `unmatched` when no
route answered), never by its path, so metric labels stay bounded and no path-borne value reaches a
log. The request id is the caller's `X-Request-Id` when that is a short plain token, else a new one;
it is returned as `X-Request-Id`. OAuth refusals are recorded by `refused`, called where errors are
rendered (`oauth.errors`, the token view).
"""

from __future__ import annotations

import re
import secrets
import time

import structlog
from django.http import HttpRequest, HttpResponse

from infra import logs, metrics

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED = "unmatched"

logger = structlog.get_logger("mcpauth.request")


def request_id_for(request: HttpRequest) -> str:
    # META, not request.headers: the latter builds a dict of every header for this one read.
    return request_id_from(request.META.get("HTTP_X_REQUEST_ID", ""))


def request_id_from(offered: str) -> str:
    """The caller's `X-Request-Id` when it is a short plain token, else a new one."""
    return offered if REQUEST_ID.match(offered) else secrets.token_hex(16)


def endpoint_of(request: HttpRequest) -> str:
    """The route's name (`oauth:token`), or the view's dotted path for an unnamed route."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNMATCHED


def refused(error: str) -> None:
    """An OAuth error response with code `error`: counted, and named in the request's log line."""
    metrics.refused(error)
    logs.bind(error=error)


def client_known(client_id: str) -> None:
    """The request's client, for its log line (an identifier, never a credential)."""
    logs.bind(client_id=client_id)


class RequestObservation:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_for(request)
        logs.begin_request(request_id)
        try:
            response = self.get_response(request)
            response["X-Request-Id"] = request_id
            self.record(request, response, time.perf_counter() - started)
            return response
        finally:
            logs.end_request()

    @staticmethod
    def record(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
        project = getattr(request, "project", None)
        finished(request.method, endpoint_of(request), response.status_code, seconds, getattr(project, "slug", None))


def finished(method: str, endpoint: str, status: int, seconds: float, project: str | None) -> None:
    """A request answered: counted, timed and logged (one line, with the request's bound context).
    Also called for the answers `infra.documents` serves without Django."""
    metrics.observe_request(endpoint, status, seconds)
    context = logs.bound()
    logger.info("request", method=method, endpoint=endpoint, status=status, duration_ms=round(seconds * 1000, 2),
                project=project, client_id=context.get("client_id"), error=context.get("error"))
