"""Windowed rate limits in Redis (through Django's cache): per client IP and per project.

Each limit is a pair of fixed windows: a short one sized for bursts (Claude and ChatGPT register
from a few shared addresses, so bursts must be generous) and a long one for the sustained rate.
Counters are atomic increments on keys that expire with their window, so every worker process
shares them. Over a limit → `TooManyRequests` (429) with `Retry-After` until the window turns.

With Redis, every window of every scope is counted by one Lua script: one round trip per
request, however many windows. Other cache backends (the embedded default's cache table, whose
`add` and `incr` are atomic across processes) count with `cache.add` + `cache.incr`, window by window.
"""

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import NoScriptError

from mcpauth_service.security import client_ip

from .errors import TooManyRequests


@dataclass(frozen=True)
class Window:
    seconds: int
    limit: int


@dataclass(frozen=True)
class Counter:
    """One window of one scope for one subject, at time `now`."""

    scope: str
    window: Window
    subject: str
    now: float

    @property
    def index(self) -> int:
        return int(self.now // self.window.seconds)

    @property
    def key(self) -> str:
        return f"ratelimit:{self.scope}:{self.window.seconds}:{self.index}:{self.subject}"

    @property
    def timeout(self) -> int:
        return self.window.seconds + 1

    def refuse(self) -> TooManyRequests:
        retry_after = int((self.index + 1) * self.window.seconds - self.now) + 1
        return TooManyRequests(retry_after, reason=f"{self.scope} limit {self.window.limit}/{self.window.seconds}s")


DEFAULT_LIMITS: dict[str, list[Window]] = {
    # A burst of 60 a minute from one address, 600 an hour sustained.
    "register:ip": [Window(60, 60), Window(3600, 600)],
    # Across all callers of one project.
    "register:project": [Window(60, 600), Window(3600, 6000)],
}

# KEYS: the counters in order; ARGV: timeout and limit of each. Counts them in order and stops
# at the first one over its limit (as the window-by-window loop does), returning its 1-based
# position, else 0. A new counter gets its expiry in the same atomic step, so it dies with its window.
HIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[2 * i - 1]) end
  if count > tonumber(ARGV[2 * i]) then return i end
end
return 0
"""
HIT_SCRIPT_SHA = hashlib.sha1(HIT_SCRIPT.encode()).hexdigest()


def limits_for(scope: str) -> list[Window]:
    """`settings.RATE_LIMITS` may override a scope with [(seconds, limit), ...]."""
    configured = getattr(settings, "RATE_LIMITS", {}).get(scope)
    if configured is None:
        return DEFAULT_LIMITS[scope]
    return [Window(int(seconds), int(limit)) for seconds, limit in configured]


def hit(*checks: tuple[str, str]) -> None:
    """Count one request against every window of each (scope, subject), in order; 429 at the first full one."""
    now = time.time()
    counters = [Counter(scope, window, subject, now) for scope, subject in checks for window in limits_for(scope)]
    cache = caches["default"]
    full = _count_in_redis(cache, counters) if isinstance(cache, RedisCache) else _count_in_cache(cache, counters)
    if full is not None:
        raise full.refuse()


def _count_in_redis(cache: RedisCache, counters: list[Counter]) -> Counter | None:
    client = cache._cache.get_client(write=True)  # the backend's own client and connection pool
    keys = [cache.make_and_validate_key(c.key) for c in counters]
    args = [value for c in counters for value in (c.timeout, c.window.limit)]
    try:
        position = client.evalsha(HIT_SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:  # a restarted or new Redis: EVAL runs it and caches it for the next EVALSHA
        position = client.eval(HIT_SCRIPT, len(keys), *keys, *args)
    return counters[position - 1] if position else None


def _count_in_cache(cache: BaseCache, counters: list[Counter]) -> Counter | None:
    for counter in counters:
        # add() sets the expiry once; incr() keeps it, so the key dies with its window.
        cache.add(counter.key, 0, timeout=counter.timeout)
        try:
            count = cache.incr(counter.key)
        except ValueError:  # expired between add and incr
            cache.add(counter.key, 1, timeout=counter.timeout)
            count = 1
        if count > counter.window.limit:
            return counter
    return None


def limit_registration(request) -> None:
    """The registration endpoint's limits: the caller's address, then the whole project."""
    project = str(request.project.pk)
    hit(("register:ip", f"{project}:{client_ip(request) or 'unknown'}"), ("register:project", project))
