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
