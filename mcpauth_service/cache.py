"""Django's Redis cache backend, without building a Redis client on every call.

`django.core.cache.backends.redis.RedisCacheClient.get_client()` constructs a new `redis.Redis`
for each cache operation; with redis-py 8 that rebuilds a ~170-entry case-insensitive table of
response callbacks every time, which costs more CPU than the round trip itself (more than half of
a warm introspection's cache read in `python -m bench.profile --cprofile introspect_warm`). The
client is a thin, thread-safe handle on a connection pool (which already survives forks by
checking its pid), so one per pool is enough.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    # --- bytes as they are: for hot values that are not Python objects -----------------------------
    # Django's get/set pickle every value and validate every key; for a compact value read on
    # every request (cached introspection answers) that costs as much as the round trip. These
    # store bytes unchanged under the same prefixed, versioned key (`make_key`), so expiry and
    # `clear()` work as for any other key; a key written here must only be read here.
    def get_bytes(self, key: str) -> bytes | None:
        return self._cache.get_client(key).get(self.make_key(key))

    def add_bytes(self, key: str, value: bytes, timeout: int) -> None:
        self._cache.get_client(key, write=True).set(self.make_key(key), value, ex=timeout, nx=True)

    def set_many_bytes(self, keys: list[str], value: bytes, timeout: int) -> None:
        client = self._cache.get_client(keys[0], write=True)
        if len(keys) == 1:
            client.set(self.make_key(keys[0]), value, ex=timeout)
            return
        pipeline = client.pipeline(transaction=False)  # independent keys: no MULTI/EXEC needed
        for key in keys:
            pipeline.set(self.make_key(key), value, ex=timeout)
        pipeline.execute()


# `django.core.cache.cache` is a proxy (isinstance sees the proxy), so these ask for the method.
def get_bytes(cache, key: str) -> bytes | None:
    """`cache.get_bytes` where the backend has it (Redis); elsewhere (tests' local memory) the bytes
    go through the backend's own get/set, which is equally correct there."""
    method = getattr(cache, "get_bytes", None)
    return method(key) if method is not None else cache.get(key)


def add_bytes(cache, key: str, value: bytes, timeout: int) -> None:
    method = getattr(cache, "add_bytes", None)
    if method is not None:
        method(key, value, timeout)
    else:
        cache.add(key, value, timeout)


def set_many_bytes(cache, keys: list[str], value: bytes, timeout: int) -> None:
    if not keys:
        return
    method = getattr(cache, "set_many_bytes", None)
    if method is not None:
        method(keys, value, timeout)
    else:
        cache.set_many(dict.fromkeys(keys, value), timeout)
