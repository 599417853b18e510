"""Another worker's in-process tier (infra.localcache), for tests of cross-process forgetting."""

from infra.localcache import LocalCache


def another_worker_holding(key: str) -> LocalCache:
    """A tier with its own memory, as another process has, holding a stale value at `key` kept under
    the current shared generation. Outside a request it reads the generation on every use, as another
    process does at the start of its next request."""
    other = LocalCache(ttl=60)
    other.put(key, "stale", other.now())
    return other
