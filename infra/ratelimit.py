"""Rate limits: one limiter for every limit (registration, sign-in, emails sent, operator sign-in, second step
and sign-up).

A limit is a named list of fixed windows ("60 a minute and 600 an hour"), counted per subject (an
address, an account, a project) in the store every worker process shares: with Redis, one Lua
script counts every window of every check in one round trip; otherwise Django's cache
(`cache.add` + `cache.incr`, atomic in a shared cache). Over a window → `RateLimited` (429)
with `Retry-After` and the RateLimit header fields of draft-ietf-httpapi-ratelimit-headers
(`RateLimit-Policy` and `RateLimit`, structured-field lists).

Sign-in counts an attempt before the password is checked and forgives it when the password was
right (`Hit.forgive`), so only failures stay counted and parallel guesses cannot outrun the count.
Store errors propagate: a limited endpoint never runs unlimited because its store is down.
`RATE_LIMITS=off` in the environment turns every limit off (load tests only; a system check says so).
"""

import functools
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection

from infra import metrics
from infra.security import client_ip


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.limit}/{format_seconds(self.seconds)}"


@dataclass(frozen=True)
class Limit:
    """One named limit: its default windows, what it counts, and whether a project may change it."""

    name: str
    default: tuple[Window, ...]
    label: str
    per_project: bool = True

    def windows(self, project=None) -> tuple[Window, ...]:
        """The project's own windows for this limit if it set them, else the defaults."""
        configured = (getattr(project, "rate_limits", None) or {}).get(self.name) if self.per_project else None
        if not configured:
            return self.default
        return tuple(Window(int(limit), int(seconds)) for limit, seconds in configured)


LIMITS: dict[str, Limit] = {limit.name: limit for limit in [
    # Claude and ChatGPT register from a few shared addresses: bursts must be generous.
    Limit("register:ip", (Window(60, 60), Window(600, 3600)), "Registrations per client address"),
    Limit("register:project", (Window(600, 60), Window(6000, 3600)), "Registrations per project (all addresses)"),
    Limit("signin:account", (Window(5, 900),), "Failed end-user sign-ins per account"),
    # Counted across projects: one address guessing at many tenants is still one address.
    Limit("signin:ip", (Window(20, 900),), "Failed end-user sign-ins and sign-ups per client address"),
    # RFC 8628 §5.1: user codes are short, so guesses are limited (failures per address, tries per code).
    Limit("device:ip", (Window(20, 900), Window(100, 86400)), "Wrong device codes per client address"),
    Limit("device:code", (Window(10, 900),), "Tries of one device code"),
    # Emails sent on request (projects.accounts): each one lands in someone's inbox.
    Limit("verify:account", (Window(3, 900), Window(10, 86400)), "Verification emails resent per account"),
    Limit("reset:account", (Window(3, 900), Window(10, 86400)), "Password reset emails per address"),
    Limit("reset:ip", (Window(10, 900),), "Password reset requests per client address"),
    Limit("operator-signin:account", (Window(10, 900),), "Failed operator password checks per account",
          per_project=False),
    Limit("operator-signin:ip", (Window(30, 900),), "Failed operator password checks per client address",
          per_project=False),
    Limit("operator-reset:account", (Window(3, 900), Window(10, 86400)), "Operator password reset emails per address",
          per_project=False),
    Limit("operator-reset:ip", (Window(10, 900),), "Operator password reset requests per client address",
          per_project=False),
    Limit("operator-signup:ip", (Window(10, 3600),), "Operator sign-ups per client address", per_project=False),
    # A TOTP code has 10^6 values and 3 are valid at a time (±1 step): 5 guesses in 15 minutes and 20 a
    # day keep the odds of a guess under 1 in 10,000 a day.
    Limit("operator-mfa:account", (Window(5, 900), Window(20, 86400)),
          "Wrong second-factor codes per operator account", per_project=False),
    Limit("operator-mfa:ip", (Window(30, 900),), "Wrong second-factor codes per client address", per_project=False),
]}
PROJECT_LIMITS = [limit for limit in LIMITS.values() if limit.per_project]

MAX_WINDOWS = 4
MAX_WINDOW_SECONDS = 7 * 24 * 3600
MAX_LIMIT = 10**9
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WINDOW_SPEC = re.compile(r"^\s*(\d{1,10})\s*/\s*(\d{1,7})\s*([smhd]?)\s*$")


def format_seconds(seconds: int) -> str:
    """900 → "15m", 3600 → "1h", 90 → "90s": the largest unit that divides exactly."""
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def format_windows(windows) -> str:
    return ", ".join(str(Window(int(limit), int(seconds))) for limit, seconds in windows)


def parse_windows(text: str) -> list[list[int]]:
    """"10/15m, 100/1d" → [[10, 900], [100, 86400]]; ValueError with a readable reason otherwise."""
    windows: list[list[int]] = []
    for part in text.split(","):
        match = WINDOW_SPEC.match(part) if part.isascii() else None
        shown = f"“{part.strip()}”" if part.isascii() and part.strip().isprintable() else "This"  # echo only plain text
        if not match:
            raise ValueError(f"{shown} is not a limit like 10/15m (count / window in s, m, h or d).")
        limit, seconds = int(match[1]), int(match[2]) * UNITS[match[3] or "s"]
        if not 1 <= limit <= MAX_LIMIT or not 1 <= seconds <= MAX_WINDOW_SECONDS:
            raise ValueError(f"{shown}: a count from 1 to {MAX_LIMIT} per 1 second to 7 days.")
        if seconds in {s for _, s in windows}:
            raise ValueError(f"Two limits over the same window ({format_seconds(seconds)}).")
        windows.append([limit, seconds])
    if len(windows) > MAX_WINDOWS:
        raise ValueError(f"At most {MAX_WINDOWS} windows.")
    return sorted(windows, key=lambda w: w[1])


def enabled() -> bool:
    return settings.RATE_LIMITS_ENABLED


# --- counting ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Counter:
    """One window of one limit for one subject. The window opens at the subject's first request
    and the counter expires with it (so a window never ends early because a clock minute turned)."""

    limit: Limit
    window: Window
    windows: tuple[Window, ...]  # all of the limit's windows in force (for RateLimit-Policy)
    subject: str

    @property
    def key(self) -> str:
        return f"ratelimit:{self.limit.name}:{self.window.seconds}:{self.subject}"

    def refuse(self, retry_after: int) -> "RateLimited":
        retry_after = max(1, retry_after)
        return RateLimited(retry_after, rate_limit_headers(self.limit.name, self.windows, self.window, retry_after),
                           reason=f"{self.limit.name} limit {self.window} for {self.subject}")


class RateLimited(Exception):
    """Over a limit: the headers to answer with (`Retry-After`, the RateLimit fields) and, for the
    log only, why. The layer above renders it (`oauth.errors.TooManyRequests`, 429 `rate_limited`)."""

    def __init__(self, retry_after: int, headers: dict[str, str], reason: str = ""):
        super().__init__(reason)
        self.retry_after = max(1, int(retry_after))
        self.headers = {**headers, "Retry-After": str(self.retry_after)}
        self.reason = reason


def policy_name(name: str, window: Window) -> str:
    return f"{name}/{format_seconds(window.seconds)}"


def rate_limit_headers(name: str, windows, exhausted: Window, retry_after: int) -> dict[str, str]:
    """RateLimit-Policy (every window of the limit) and RateLimit (the exhausted one: nothing left
    until it turns), as structured-field lists (draft-ietf-httpapi-ratelimit-headers §3, §4)."""
    policies = ", ".join(f'"{policy_name(name, w)}";q={w.limit};w={w.seconds}' for w in windows)
    return {"RateLimit-Policy": policies, "RateLimit": f'"{policy_name(name, exhausted)}";r=0;t={retry_after}'}


def cap_headers(name: str, cap: int, retry_after: int) -> dict[str, str]:
    """The same fields for a quota without a window (a cap on how many exist)."""
    return {"RateLimit-Policy": f'"{name}";q={cap}', "RateLimit": f'"{name}";r=0;t={retry_after}'}


@dataclass
class Hit:
    """The counters one request incremented; `forgive` takes its count back (a right password)."""

    counters: list[Counter]

    def forgive(self) -> None:
        if self.counters:
            store().forgive(self.counters)


def check(name: str, subject: str, project=None) -> tuple[Limit, str, tuple[Window, ...]]:
    limit = LIMITS[name]
    return limit, subject, limit.windows(project)


def hit(*checks: tuple[Limit, str, tuple[Window, ...]]) -> Hit:
    """Count one request against every window of each check, in order; 429 at the first full one
    (the counts after it are not taken)."""
    if not enabled():
        return Hit([])
    counters = [Counter(limit, window, windows, subject) for limit, subject, windows in checks for window in windows]
    full = store().count(counters)
    if full is not None:
        position, retry_after = full
        metrics.rate_limited.labels(counters[position].limit.name).inc()
        raise counters[position].refuse(retry_after)
    return Hit(counters)


# --- the stores ----------------------------------------------------------------------------------

# KEYS: the counters in order; ARGV: window seconds and limit of each. Counts them in order and
# stops at the first one over its limit, returning its 1-based position and the seconds its window
# has left, else {0, 0}. A new counter gets its expiry in the same atomic step: it dies with its window.
HIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[2 * i - 1]) end
  if count > tonumber(ARGV[2 * i]) then return {i, redis.call('TTL', key)} end
end
return {0, 0}
"""
# Takes one count back from each counter that still exists (never creates a key without expiry).
FORGIVE_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call('DECR', key) < 0 or redis.call('TTL', key) < 0 then redis.call('DEL', key) end
end
return 0
"""


class RedisStore:
    """One round trip a request, on the cache's own Redis client and pool
    (`django_redis.get_redis_connection`); keys are the cache's (`cache.make_key`)."""

    def __init__(self, client):
        self.hit_script = client.register_script(HIT_SCRIPT)  # EVALSHA, EVAL once if Redis forgot it
        self.forgive_script = client.register_script(FORGIVE_SCRIPT)

    def count(self, counters: list[Counter]) -> tuple[int, int] | None:
        """(position of the first full counter, seconds its window has left), or None."""
        keys = [cache.make_key(c.key) for c in counters]
        args = [value for c in counters for value in (c.window.seconds, c.window.limit)]
        position, ttl = self.hit_script(keys=keys, args=args)
        return (position - 1, ttl) if position else None

    def forgive(self, counters: list[Counter]) -> None:
        self.forgive_script(keys=[cache.make_key(c.key) for c in counters])


class CacheStore:
    """Any Django cache shared by every worker: `add` sets a counter's expiry once, `incr` keeps it."""

    def count(self, counters: list[Counter]) -> tuple[int, int] | None:
        for position, counter in enumerate(counters):
            seconds = counter.window.seconds
            if cache.add(counter.key, 0, timeout=seconds):  # a new window: remember when it ends
                cache.set(f"{counter.key}:ends", time.time() + seconds, timeout=seconds)
            try:
                count = cache.incr(counter.key)
            except ValueError:  # expired between add and incr
                cache.add(counter.key, 1, timeout=seconds)
                count = 1
            if count > counter.window.limit:
                ends = cache.get(f"{counter.key}:ends", time.time() + seconds)
                return position, int(ends - time.time()) + 1
        return None

    def forgive(self, counters: list[Counter]) -> None:
        for counter in counters:
            try:
                cache.decr(counter.key)
            except ValueError:  # its window is over: nothing to take back
                pass


@functools.cache
def _store_for(url: str) -> RedisStore | CacheStore:
    return RedisStore(get_redis_connection("default")) if url else CacheStore()


def store() -> RedisStore | CacheStore:
    return _store_for(settings.REDIS_URL or "")


# --- the limits of each endpoint ------------------------------------------------------------------

def limit_registration(request) -> None:
    """The registration endpoint's limits: the caller's address, then the whole project."""
    project = request.project
    hit(check("register:ip", f"{project.pk}:{client_ip(request) or 'unknown'}", project),
        check("register:project", str(project.pk), project))
