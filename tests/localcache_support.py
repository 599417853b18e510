"""Another worker's in-process tier (projects.localcache), for tests of cross-process forgetting."""

import threading

from projects.localcache import LocalCache


def another_worker_holding(key: str) -> tuple[LocalCache, threading.Event]:
    """A tier with its own memory and its own Redis subscription, holding a stale value at `key`,
    and an event set when a broadcast drops that key there."""
    other = LocalCache(ttl=60)
    other.put(key, "stale", other.now())
    dropped = threading.Event()
    original = other._drop

    def watch(k):
        original(k)
        if k == key:
            dropped.set()

    other._drop = watch
    return other, dropped
