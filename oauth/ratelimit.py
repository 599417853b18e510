"""Windowed rate limits in Redis (through Django's cache): per client IP and per project.

Each limit is a pair of fixed windows: a short one sized for bursts (Claude and ChatGPT register
from a few shared addresses, so bursts must be generous) and a long one for the sustained rate.
Counters are atomic `incr`s on keys that expire with their window, so every worker process
shares them. Over a limit → `TooManyRequests` (429) with `Retry-After` until the window turns.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from mcpauth_service.security import client_ip

from .errors import TooManyRequests


@dataclass(frozen=True)
class Window:
    seconds: int
    limit: int


DEFAULT_LIMITS: dict[str, list[Window]] = {
    # A burst of 60 a minute from one address, 600 an hour sustained.
    "register:ip": [Window(60, 60), Window(3600, 600)],
    # Across all callers of one project.
    "register:project": [Window(60, 600), Window(3600, 6000)],
}


def limits_for(scope: str) -> list[Window]:
    """`settings.RATE_LIMITS` may override a scope with [(seconds, limit), ...]."""
    configured = getattr(settings, "RATE_LIMITS", {}).get(scope)
    if configured is None:
        return DEFAULT_LIMITS[scope]
    return [Window(int(seconds), int(limit)) for seconds, limit in configured]


def hit(scope: str, subject: str) -> None:
    """Count one request of `subject` against every window of `scope`; raise 429 when one is full."""
    now = time.time()
    for window in limits_for(scope):
        index = int(now // window.seconds)
        key = f"ratelimit:{scope}:{window.seconds}:{index}:{subject}"
        # add() sets the expiry once; incr() keeps it, so the key dies with its window.
        cache.add(key, 0, timeout=window.seconds + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window.seconds + 1)
            count = 1
        if count > window.limit:
            retry_after = int((index + 1) * window.seconds - now) + 1
            raise TooManyRequests(retry_after, reason=f"{scope} limit {window.limit}/{window.seconds}s")


def limit_registration(request) -> None:
    """The registration endpoint's limits: the caller's address, then the whole project."""
    hit("register:ip", f"{request.project.pk}:{client_ip(request) or 'unknown'}")
    hit("register:project", str(request.project.pk))
