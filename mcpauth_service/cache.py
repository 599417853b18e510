"""Django's Redis cache backend, without building a Redis client on every call.

`django.core.cache.backends.redis.RedisCacheClient.get_client()` constructs a new `redis.Redis`
for each cache operation; with redis-py 8 that rebuilds a ~170-entry case-insensitive table of
response callbacks every time, which costs more CPU than the round trip itself (more than half of
a warm introspection's cache read in `python -m bench.profile --cprofile introspect_warm`). The
client is a thin, thread-safe handle on a connection pool (which already survives forks by
checking its pid), so one per pool is enough.
"""

import os
import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


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
        self._local = threading.local()

    # --- bytes as they are: for hot values that are not Python objects -----------------------------
    # Django's get/set pickle every value and validate every key, and redis-py's client adds a pool
    # checkout (with a poll of the socket), retry and reply-callback layers: for a compact value read
    # on every request (cached introspection answers) that costs more CPU than the round trip. These
    # store bytes unchanged under the same prefixed, versioned key (`make_key`), so expiry and
    # `clear()` work as for any other key, over one connection per thread (see `_command`); a key
    # written here must only be read here.
    def get_bytes(self, key: str) -> bytes | None:
        return self._command(("GET", self.make_key(key)))[0]

    def add_bytes(self, key: str, value: bytes, timeout: int) -> None:
        self._command(("SET", self.make_key(key), value, "EX", timeout, "NX"))

    def set_many_bytes(self, keys: list[str], value: bytes, timeout: int) -> None:
        self._command(*(("SET", self.make_key(key), value, "EX", timeout) for key in keys))

    def _command(self, *commands: tuple) -> list:
        """Send `commands` in one write and read their replies, on this thread's own connection
        (made from the pool's settings, remade after a fork); once more on a fresh connection if
        the first attempt fails on the connection (every command used here is idempotent)."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.send_packed_command(connection.pack_commands(commands))
                return [connection.read_response() for _ in commands]
            except (RedisConnectionError, RedisTimeoutError, OSError):
                connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                connection.disconnect()  # a reply may be left unread: never reuse this socket
                raise
        raise AssertionError("unreachable")

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.pid != os.getpid():
            pool = self._cache._get_connection_pool(write=True)
            connection = self._local.connection = pool.connection_class(**pool.connection_kwargs)
        return connection


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
