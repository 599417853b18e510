"""Every request observed once: a request id, a Prometheus count and latency, one log line.

`RequestObservation` sits right after the probes in MIDDLEWARE (probes and `/metrics` scrapes are
neither counted nor logged). It names the request by its route (`oauth:token`; `unmatched` when no
route answered), never by its path, so metric labels stay bounded and no path-borne value reaches a
log. The request id is the caller's `X-Request-Id` when that is a short plain token, else a new one;
it is returned as `X-Request-Id`. OAuth refusals are named by `refused`, called where errors are
rendered (`oauth.errors`, the token view, the sign-in page's 429), and counted once per request here,
with the request's project, route and client, by the hooks registered with `on_refusal` (the
`activity` app's, which also feeds the Prometheus counter).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from infra import logs, metrics

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED = "unmatched"

logger = structlog.get_logger("mcpauth.request")


def request_id_for(request: HttpRequest) -> str:
    offered = request.headers.get("X-Request-Id", "")
    return offered if REQUEST_ID.match(offered) else secrets.token_hex(16)


def endpoint_of(request: HttpRequest) -> str:
    """The route's name (`oauth:token`), or the view's dotted path for an unnamed route."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNMATCHED


RefusalHook = Callable[[object, str, str, str], None]  # (project or None, endpoint, error, client_id)
_refusal_hooks: list[RefusalHook] = []


def on_refusal(hook: RefusalHook) -> None:
    """Call `hook` once for every request answered with an OAuth error (set up in AppConfig.ready())."""
    if hook not in _refusal_hooks:
        _refusal_hooks.append(hook)


def refused(error: str) -> None:
    """An OAuth error response with code `error`: named in the request's log line, counted at its end."""
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
        endpoint = endpoint_of(request)
        metrics.observe_request(endpoint, response.status_code, seconds)
        context = logs.bound()
        project = getattr(request, "project", None)
        if context.get("error"):
            for hook in _refusal_hooks:
                hook(project, endpoint, context["error"], context.get("client_id") or "")
        logger.info("request", method=request.method, endpoint=endpoint, status=response.status_code,
                    duration_ms=round(seconds * 1000, 2), project=getattr(project, "slug", None),
                    client_id=context.get("client_id"), error=context.get("error"))
