"""An in-process tier in front of the Django cache for hot rows that rarely change (tenants).

Every request under `/p/<slug>/` needs its project. The Django cache (Redis) already spares the
database, but a Redis round trip plus unpickling still costs more CPU than a whole hello-world
view, so each process also keeps the rows it read, for at most `ttl` seconds.

Forgetting a key (a project saved or deleted) drops it here and broadcasts it over Redis pub/sub;
a daemon thread in every process drops it there within milliseconds. The process serves from
memory only while that subscription is up, and never keeps a value read before a broadcast that
arrived since (so a reader racing a writer's commit cannot pin the old row). Without Redis (the
embedded default) the tier stays off: the local-memory cache is already in process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from mcpauth_service.cache import redis_options

logger = logging.getLogger("mcpauth.localcache")

MISS = object()


def now_and_at_commit(forget: Callable[[], None]) -> None:
    """Drop a cached value now (for this connection's readers) and again when the current transaction
    commits: a reader that refilled the cache from the old committed row in between must not keep it."""
    forget()
    transaction.on_commit(forget)


def _channel() -> str:
    prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX", "")
    scope = hashlib.sha256(f"{settings.REDIS_URL}|{prefix}".encode()).hexdigest()[:16]
    return f"mcpauth:localcache:forget:{scope}"


class LocalCache:
    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Any]] = {}
        self._forgotten: dict[str, float] = {}  # key -> monotonic time of the last forget seen
        self._pid: int | None = None
        self._listening = False
        self._lock = threading.Lock()
        self._publisher = None

    # --- reading and writing ----------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        if not getattr(settings, "REDIS_URL", None) or self.ttl <= 0:
            return False
        if self._pid != os.getpid():  # first use in this process (or after a fork)
            self._start()
        return self._listening

    def get(self, key: str) -> Any:
        """The value kept for `key`, or MISS."""
        if not self.enabled:
            return MISS
        hit = self._entries.get(key)
        if hit is None:
            return MISS
        if hit[0] <= time.monotonic():
            self._entries.pop(key, None)
            return MISS
        return hit[1]

    def now(self) -> float:
        """Take this before reading the value to `put`: a forget seen after it voids the put."""
        return time.monotonic()

    def put(self, key: str, value: Any, read_at: float) -> None:
        if not self.enabled or self._forgotten.get(key, -1.0) >= read_at:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def forget(self, *keys: str) -> None:
        """Drop `keys` here and in every other process."""
        for key in keys:
            self._drop(key)
        if getattr(settings, "REDIS_URL", None):
            try:
                publisher = self._client()
                for key in keys:
                    publisher.publish(_channel(), f"{self._sender()}|{key}")
            except Exception:  # noqa: BLE001 - the TTL bounds what a missed broadcast can cost
                logger.warning("localcache: could not broadcast a forget", exc_info=True)

    def clear(self) -> None:
        self._entries.clear()

    def _drop(self, key: str) -> None:
        self._forgotten[key] = time.monotonic()
        if len(self._forgotten) > self.max_entries:
            self._forgotten.clear()
            self._entries.clear()
        self._entries.pop(key, None)

    # --- the subscription ---------------------------------------------------------------------------
    def _sender(self) -> str:
        return f"{os.getpid()}.{id(self)}"

    def _client(self):
        import redis

        if self._publisher is None or self._publisher[0] != os.getpid():
            self._publisher = (os.getpid(), redis.Redis.from_url(settings.REDIS_URL, **redis_options()))
        return self._publisher[1]

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._listening = False
            self._entries.clear()
            ready = threading.Event()
            threading.Thread(target=self._listen, args=(ready,), name="localcache-forget", daemon=True).start()
        ready.wait(2)  # normally a millisecond; if Redis is slow the tier simply stays off for now

    def _listen(self, ready: threading.Event) -> None:
        import redis

        pid = os.getpid()
        while self._pid == pid:
            try:
                # Bounded connect; no read timeout, as the subscription waits for messages by design.
                client = redis.Redis.from_url(settings.REDIS_URL, **{**redis_options(), "socket_timeout": None})
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(_channel())
                pubsub.get_message(timeout=2)  # the subscribe confirmation: from here on we hear forgets
                self._entries.clear()  # anything may have changed while nobody listened
                self._listening = True
                ready.set()
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        sender, _, key = (data.decode() if isinstance(data, bytes) else str(data)).partition("|")
                        if sender != self._sender():  # our own forgets were applied when made
                            self._drop(key)
            except Exception:  # noqa: BLE001 - off until resubscribed; reads go to Redis meanwhile
                self._listening = False
                self._entries.clear()
                ready.set()
                logger.warning("localcache: subscription lost; retrying", exc_info=True)
                time.sleep(1)
