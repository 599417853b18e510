"""An in-process tier for hot rows that rarely change (projects, clients, project secrets), never stale.

Every request under `/p/<slug>/` needs its project, and the token, revocation and introspection
endpoints need a client or a project secret: each process keeps the rows it read, so a hot row
costs no query. What makes that safe is one generation number in the shared cache (Redis, or the
embedded default's cache table), which every change moves on:

- a row is kept with the generation read *before* the row was read from the database;
- it is served only while the shared generation is still that number;
- the generation is read at most once per request (the first time a tier is used in it) and on
  every use outside requests (commands, tasks);
- every change (`forget`) increments it after its transaction commits (and once at once), before
  the change's response is sent: a request that starts after the change was acknowledged reads
  the new number, and nothing kept before it is served. There is no broadcast to wait for.

A reader racing a writer keeps at most a row tagged with the old generation, which the writer's
increment at commit retires. A generation that is missing (never set, or a flushed or restarted
Redis) starts again from a random number, so a lost key never brings an old generation back.

Storage is a `cachetools.LRUCache` (the least recently used entry evicted when full; an entry older
than `ttl` seconds is not served), under a lock: a worker's threads share it. `get_or_load` is the one way callers use
it (look up, else read and keep).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import LRUCache
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import transaction

from infra.cache import UNREACHABLE, get_bytes

MISS = object()
GENERATION_KEY = "localcache:generation"

_request = threading.local()  # the generation read in this thread's current request, if any


def now_and_at_commit(forget: Callable[[], None]) -> None:
    """Drop a cached value now (for this connection's readers) and again when the current transaction
    commits: a reader that refilled the cache from the old committed row in between must not keep it."""
    forget()
    transaction.on_commit(forget)


def request_began(**kwargs) -> None:
    _request.active, _request.generation = True, None


def request_ended(**kwargs) -> None:
    _request.active, _request.generation = False, None


request_started.connect(request_began, dispatch_uid="mcpauth.localcache.request_started")
request_finished.connect(request_ended, dispatch_uid="mcpauth.localcache.request_finished")


def shared_generation() -> int | None:
    """The shared generation as stored now (one read, whatever this thread's request read); None when
    it is unknown. For answers kept outside a request (`infra.documents`)."""
    return _read_generation()


def _read_generation() -> int | None:
    stored = get_bytes(cache, GENERATION_KEY)  # an integer: stored as digits by Redis, pickled elsewhere
    if stored is None:  # never set, or lost (a flushed Redis): a random start never revives an old number
        try:
            cache.add(GENERATION_KEY, secrets.randbelow(2**62), timeout=None)
        except UNREACHABLE:  # Redis is down: the generation is unknown, so nothing kept is served
            return None
        stored = get_bytes(cache, GENERATION_KEY)
    return int(stored) if stored is not None else None


def generation() -> int | None:
    """The shared generation, read once per request; None when it is unknown."""
    if not getattr(_request, "active", False):
        return _read_generation()
    if _request.generation is None:
        _request.generation = _read_generation()
    return _request.generation


def bump() -> None:
    """Retire every row any process keeps (the next request anywhere reads the new generation)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # never set, or lost: start from a random number (never an old one)
        if not cache.add(GENERATION_KEY, secrets.randbelow(2**62), timeout=None):
            cache.incr(GENERATION_KEY)
    _request.generation = None  # this request's own later reads see its change


def always(value: Any) -> bool:
    return True


class LocalCache:
    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl  # also bounds memory; correctness comes from the generation
        self.max_entries = max_entries
        self._lock = threading.Lock()
        # key → (monotonic time it expires, generation it was read under, value)
        self._entries: LRUCache[str, tuple[float, int, Any]] = LRUCache(max_entries)

    def get_or_load(self, key: str, load: Callable[[], Any], keep: Callable[[Any], bool] = always) -> Any:
        """The value kept for `key` under the current generation, else `load()`, kept (when `keep`
        says so) under the generation read before loading."""
        value = self.get(key)
        if value is MISS:
            read_at = self.now()
            value = load()
            if keep(value):
                self.put(key, value, read_at)
        return value

    def get(self, key: str) -> Any:
        """The value kept for `key` under the current generation, or MISS."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is None:
            return MISS
        current = generation()
        if current is None:  # the shared store is unreachable: whatever changed meanwhile, keep nothing
            self.clear()
            return MISS
        if hit[0] <= time.monotonic() or hit[1] != current:
            with self._lock:
                self._entries.pop(key, None)
            return MISS
        return hit[2]

    def peek(self, key: str) -> Any:
        """The kept value whatever its generation (for bookkeeping on it, never for serving), or MISS."""
        with self._lock:
            hit = self._entries.get(key)
        return MISS if hit is None else hit[2]

    def now(self) -> int | None:
        """Take this before reading the value to `put`: the generation it will be kept under."""
        return generation()

    def put(self, key: str, value: Any, read_at: int | None) -> None:
        if read_at is None or self.ttl <= 0:
            return
        with self._lock:
            # The least recently used entry makes room when full.
            self._entries[key] = (time.monotonic() + self.ttl, read_at, value)

    def forget(self, *keys: str) -> None:
        """Drop `keys` here, and everything every process keeps (see the module docstring)."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
        bump()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
