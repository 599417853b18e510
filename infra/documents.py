"""Public documents kept as finished answers, in front of Django: discovery and JWKS.

An authorization server's metadata (RFC 8414) and key set (RFC 7517) are fetched by every client
and resource server, and the answer to a plain GET of one depends only on the request's place (host,
path, scheme) and on the project's state. `DocumentCache` wraps the WSGI application: the first
time Django answers such a GET with a 200 and the view said so (`keep`), it keeps the answer's
status, headers and body; the next same GET gets those bytes without Django, provided that

- the shared generation (`infra.localcache`: one Redis `GET`, the number every change of a project,
  a client, a secret or a signing key moves on after its commit, before its response) is still the
  one the request that rendered the answer read before it read the project: a change committed
  anywhere retires the kept answer on every worker at once, as it retires the process tier's rows;
- the answer is younger than the view's `seconds` (for what changes with time alone: a retired key
  leaving the key set);
- the request is one whose answer cannot differ: GET, no query string, no body, no Authorization
  header, and the same Host, X-Forwarded-Host, X-Forwarded-Proto, scheme, server name and port.
  Anything else goes to Django.

What the middleware does for every request still happens here, the same way: the request id
(`X-Request-Id`, the caller's or a new one), the Prometheus count and latency, and the one log line,
with the route name and project of the answer kept (`infra.observe.finished`). Security and CORS
headers are part of the kept headers; nothing kept carries a cookie.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from cachetools import LRUCache

from infra import localcache, observe

KEEP = "mcpauth.documents.keep"  # set in the WSGI environ by a view whose 200 may be kept
MAX_ENTRIES = 1024  # (host, path) pairs; a flood of Host headers evicts, it does not grow memory
# What, besides the path, the answer may depend on (Django's get_host, is_secure, the tenant).
PLACE = ("SCRIPT_NAME", "PATH_INFO", "wsgi.url_scheme", "HTTP_HOST", "HTTP_X_FORWARDED_HOST",
         "HTTP_X_FORWARDED_PROTO", "SERVER_NAME", "SERVER_PORT")
# A request with any of these is not a plain GET of the document: Django answers it.
NOT_PLAIN = ("QUERY_STRING", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_AUTHORIZATION")
NO_CONTEXT: dict = {}  # an answer served here binds no log context (read only)


@dataclass(frozen=True)
class Kept:
    generation: int
    expires: float  # time.perf_counter()
    status: str
    code: int
    headers: list[tuple[str, str]]  # without X-Request-Id
    body: bytes
    endpoint: str
    project: str | None


def keep(request, seconds: float) -> None:
    """Called by a view before it reads what its answer is made of: the answer to this request, if it
    is a 200 to a plain GET, may be served again for `seconds` while nothing changes (the module
    docstring says what "nothing" is). It is tagged with this request's generation, read before the
    request's project (and anything after it) was read."""
    project = getattr(request, "project", None)
    request.environ[KEEP] = (localcache.generation(), seconds, observe.endpoint_of(request),
                             getattr(project, "slug", None))


def place(environ: dict) -> tuple | None:
    """The key of a plain GET, or None when Django must answer it."""
    get = environ.get
    if get("REQUEST_METHOD") != "GET":
        return None
    for name in NOT_PLAIN:
        value = get(name)
        if value and value != "0":  # anything but absent, empty or a zero length
            return None
    return tuple(map(get, PLACE))


class DocumentCache:
    def __init__(self, application):
        self.application = application
        self._lock = threading.Lock()
        self._kept: LRUCache[tuple, Kept] = LRUCache(MAX_ENTRIES)

    def __call__(self, environ, start_response):
        started = time.perf_counter()  # also the clock of `Kept.expires` (monotonic, as perf_counter is)
        key = place(environ)
        if key is None:
            return self.application(environ, start_response)
        with self._lock:
            kept = self._kept.get(key)
        # Only a request that may be answered from memory reads the generation (never /healthz).
        if kept is not None and kept.expires > started and kept.generation == localcache.shared_generation():
            return self.serve(kept, environ, start_response, started)
        return self.fill(key, environ, start_response)

    def serve(self, kept: Kept, environ, start_response, started: float) -> list[bytes]:
        request_id = observe.request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(kept.status, [*kept.headers, ("X-Request-Id", request_id)])
        # No context variables are bound: nothing else logs here, and the line gets the request id
        # from `finished` in the place the middleware's binding gives it.
        observe.finished("GET", environ.get("PATH_INFO", "")[:observe.MAX_PATH], kept.endpoint, kept.code,
                         time.perf_counter() - started, kept.project, NO_CONTEXT, request_id)
        return [kept.body]

    def fill(self, key: tuple, environ, start_response):
        """Django answers; its answer is kept when the view asked for it and it is a plain 200."""
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info)

        chunks = self.application(environ, capture)
        wanted = environ.get(KEEP)
        if wanted is None or wanted[0] is None or not answer or not answer[0].startswith("200 "):
            return chunks
        headers = [(k, v) for k, v in answer[1] if k.lower() != "x-request-id"]
        if any(k.lower() == "set-cookie" for k, _ in headers):
            return chunks
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()  # Django's request_finished
        generation, seconds, endpoint, project = wanted
        with self._lock:
            self._kept[key] = Kept(generation, time.perf_counter() + seconds, answer[0], int(answer[0][:3]), headers,
                                   body, endpoint, project)
        return [body]

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
