"""Every request observed once: a request id, a Prometheus count and latency, one log line.

`RequestObservation` sits right after the probes in MIDDLEWARE (probes and `/metrics` scrapes are
neither counted nor logged). Metrics name the request by its route (`oauth:token`; `unmatched` when
no route answered), never by its path, so their labels stay bounded. The log line has both: the
route, and the path (API.md "Operations") without its query string and with every segment that
could be a credential masked (`loggable_path`). The request id is the caller's `X-Request-Id` when
that is a short plain token, else a new one; it is returned as `X-Request-Id`. OAuth refusals are
named by `refused`, called where errors are rendered (`oauth.errors`, the token view, the sign-in
page's 429), and counted once per request here, with the request's project, route and client, by
the hooks registered with `on_refusal` (the `activity` app's, which also feeds the Prometheus counter).
"""

from __future__ import annotations

import logging
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
level_logger = logging.getLogger("mcpauth.request")  # the standard library's, which structlog's filters by


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


# A path segment that may be a credential: one of our prefixes (mcps_, mcpat_, mcprt_, ...), or a
# long token-like run (a code, a handoff request id, a JWT pasted into a URL by mistake).
CREDENTIAL_LIKE = re.compile(r"^(mcp[a-z]*_|[A-Za-z0-9._~%+=-]{24,}$)")
MASK = "…"
SAFE_KWARGS = frozenset({"project_slug", "slug", "client_id", "pk"})  # identifiers, never credentials
MAX_PATH = 200


def loggable_path(request: HttpRequest) -> str:
    """The request's path (no query string), each credential-like segment masked unless it is a word
    of the route, the project's slug or an identifier the route captured (a client_id, a primary key)."""
    match = getattr(request, "resolver_match", None)
    known = {str(v) for k, v in (match.kwargs.items() if match is not None else ()) if k in SAFE_KWARGS}
    if match is not None and match.route:  # the route's own words (oauth-authorization-server)
        known.update(seg for seg in match.route.split("/") if "<" not in seg)
    project = getattr(request, "project", None)
    if project is not None:
        known.add(project.slug)
    segments = [seg if seg in known or not CREDENTIAL_LIKE.match(seg) else MASK for seg in request.path.split("/")]
    return "/".join(segments)[:MAX_PATH]


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
        project = getattr(request, "project", None)
        endpoint = endpoint_of(request)
        context = logs.bound()
        if context.get("error"):
            for hook in _refusal_hooks:
                hook(project, endpoint, context["error"], context.get("client_id") or "")
        path = loggable_path(request) if logging_requests() else ""  # only the log line has it
        finished(request.method, path, endpoint, response.status_code, seconds, getattr(project, "slug", None),
                 context)


def logging_requests() -> bool:
    """Whether the request line is logged at all (`LOG_LEVEL` at INFO or below): the level check
    structlog's chain starts with, made before anything of the line is built."""
    return level_logger.isEnabledFor(logging.INFO)


def finished(method: str, path: str, endpoint: str, status: int, seconds: float, project: str | None,
             context: dict | None = None, request_id: str | None = None) -> None:
    """A request answered: counted, timed and logged (one line, with the request's bound `context`,
    read here unless the caller already has it: reading it copies every context variable).
    Also called for the answers `infra.documents` serves without Django (public documents: their
    paths carry no credential), which bind no context: they pass an empty `context` and their
    `request_id`, bound for the line alone: the same line as the middleware's. Below `LOG_LEVEL` nothing of
    the line is built (structlog would drop it at its first processor)."""
    metrics.observe_request(endpoint, status, seconds)
    if not logging_requests():
        return
    if context is None:
        context = logs.bound()
    fields = {"method": method, "path": path, "endpoint": endpoint, "status": status,
              "duration_ms": round(seconds * 1000, 2), "project": project, "client_id": context.get("client_id"),
              "error": context.get("error")}
    if request_id is None:
        logger.info("request", **fields)
        return
    tokens = logs.bind_request_id(request_id)  # for this line only: the same fields, in the same order
    try:
        logger.info("request", **fields)
    finally:
        logs.unbind(tokens)
