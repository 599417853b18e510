"""The cache backends: django-redis with outage rules and a raw-bytes path, and the embedded shared store.

`RedisCache`: django-redis's backend (`django_redis.cache.RedisCache`; one client and connection
pool per process, built from `CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]`). Its errors
are not swallowed (no `IGNORE_EXCEPTIONS`): django-redis re-raises redis-py's own exception, which
mcpauth_service.errors maps to 503.

When Redis cannot be reached (stopped, frozen, unreachable: `redis` ConnectionError or TimeoutError,
within the connect and command timeouts of the pool options), a cache read is a miss and a cache
fill is skipped, because the database gives the same answer (any cache may lose any entry at any
time): `get`, `set`, `get_bytes` and `add_bytes`. Everything whose loss would change an answer
raises, and the request answers 503 (mcpauth_service.errors): deletes and tombstones (`delete`,
`delete_many`, `set_many_bytes`: an invalidation that did not land must refuse the change it
belongs to), counters and single-use marks (`add`, `incr`, `get_many`). So a revocation is refused
rather than left behind a stale cached answer, and no rate limit silently stops counting.

After a read or fill found Redis unreachable, this backend's reads and fills skip Redis for
SKIP_SECONDS (the database answers them), so a frozen Redis costs one timeout per process every
few seconds instead of one per cache call. Nothing else is skipped: what must land still tries.
"""

import base64
import itertools
import logging
import os
import pickle
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections, models, router, transaction
from django.utils.timezone import now as tz_now
from django_redis.cache import RedisCache as DjangoRedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("mcpauth.cache")

UNREACHABLE = (RedisConnectionError, RedisTimeoutError)  # the server is down, frozen or unreachable
SKIP_SECONDS = 2.0  # reads and fills go without Redis this long after it was found unreachable
WARN_EVERY = 10.0  # seconds between two "Redis unreachable" warnings of one process
_warned_at = [-WARN_EVERY]


def _log_unreachable(operation: str, exc: Exception) -> None:
    now = time.monotonic()
    if now - _warned_at[0] >= WARN_EVERY:
        _warned_at[0] = now
        logger.warning("Redis unreachable (%s: %s); cache %s served without it", type(exc).__name__, exc, operation)


def redis_options() -> dict:
    """The redis-py connection keyword arguments of the cache (connect and command timeouts, retry),
    for every other client on REDIS_URL (readiness)."""
    return dict(settings.CACHES["default"].get("OPTIONS", {}).get("CONNECTION_POOL_KWARGS", {}))


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._local = threading.local()
        # When reads and fills may try Redis again (see the module docstring). Only ever makes this
        # backend ask the database instead: never an input to what is answered.
        self._skip_until = 0.0

    def _skipping(self) -> bool:
        return time.monotonic() < self._skip_until

    def _unreachable(self, operation: str, exc: Exception) -> None:
        self._skip_until = time.monotonic() + SKIP_SECONDS
        _log_unreachable(operation, exc)

    def close(self, **kwargs) -> None:
        """Nothing to close after a request: the pool's connections serve the next one (django-redis
        closes them only with CLOSE_CONNECTION, after reading settings on every request)."""

    def redis(self):
        """The process's `redis.Redis` on the cache's pool (what `django_redis.get_redis_connection` gives)."""
        return self.client.get_client(write=True)

    # --- without Redis: a read is a miss, a fill is skipped (see the module docstring) -------------
    def get(self, key, default=None, version=None, client=None):
        if self._skipping():
            return default
        try:
            return super().get(key, default, version, client)
        except UNREACHABLE as exc:
            self._unreachable("read", exc)
            return default

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None, **kwargs):
        if self._skipping():
            return False
        try:
            return super().set(key, value, timeout, version, **kwargs)
        except UNREACHABLE as exc:
            self._unreachable("fill", exc)
            return False

    # --- bytes as they are: for hot values that are not Python objects -----------------------------
    # Pickling and redis-py's client layers (a pool checkout with a poll of the socket, retry,
    # reply callbacks) cost more CPU than the round trip for a compact value read on every request
    # (cached introspection answers, the local tier's generation): measured 42 µs of CPU a read here
    # against 58 µs through `redis.Redis.get`, two reads a warm introspection. These store bytes
    # unchanged under the same prefixed, versioned key (`make_key`), so expiry and `clear()` work as
    # for any other key, over one connection per thread (see `_command`); a key written here must
    # only be read here.
    def get_bytes(self, key: str) -> bytes | None:
        if self._skipping():
            return None
        try:
            return self._send([packed_get(self.make_key(key))], 1)[0]
        except UNREACHABLE as exc:
            self._unreachable("read", exc)
            return None

    def add_bytes(self, key: str, value: bytes, timeout: int) -> None:
        if self._skipping():
            return
        try:
            self._command(("SET", self.make_key(key), value, "EX", timeout, "NX"))
        except UNREACHABLE as exc:
            self._unreachable("fill", exc)

    def set_many_bytes(self, keys: list[str], value: bytes, timeout: int) -> None:
        self._command(*(("SET", self.make_key(key), value, "EX", timeout) for key in keys))

    def send_commands(self, *commands: tuple) -> list:
        """Raw commands (keys already `make_key`d) in one round trip, on the same lean path: the
        activity counters (`activity.record`), written by each process's writer every second.
        Raises when Redis is unreachable; the caller decides what to drop."""
        return self._command(*commands)

    def _command(self, *commands: tuple) -> list:
        """Send `commands` in one write and read their replies, on this thread's own connection
        (made from the pool's settings, timeouts included, remade after a fork); once more on a
        fresh connection if the first attempt fails on the connection (every command used here is
        idempotent), not after a timeout: a frozen Redis costs one timeout, not two."""
        return self._send(commands, len(commands))

    def _send(self, commands, replies: int) -> list:
        """`_command`, for `commands` given as tuples (packed here by redis-py) or as a list of
        already packed bytes (`packed_get`)."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.send_packed_command(commands if isinstance(commands, list) else
                                               connection.pack_commands(commands))
                return [connection.read_response() for _ in range(replies)]
            except RedisTimeoutError:
                connection.disconnect()
                raise
            except RedisConnectionError:
                connection.disconnect()
                if attempt == 2:
                    raise
            except OSError as exc:  # a socket error redis-py did not wrap: the same, for callers
                connection.disconnect()
                if attempt == 2:
                    raise RedisConnectionError(str(exc)) from exc
            except BaseException:
                connection.disconnect()  # a reply may be left unread: never reuse this socket
                raise
        raise AssertionError("unreachable")

    def _connection(self):
        """This thread's connection, of the class and with the keyword arguments of the cache's pool
        (public attributes of redis-py's `ConnectionPool`)."""
        kept = getattr(self._local, "connection", None)
        # Compared with the fork count rather than os.getpid(): one system call less per command.
        if kept is None or kept[0] != _forks[0]:
            pool = self.redis().connection_pool
            kept = self._local.connection = (_forks[0], pool.connection_class(**pool.connection_kwargs))
        return kept[1]


_forks = [0]  # forks this process came through: a child never uses its parent's connections
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


def packed_get(key: str) -> bytes:
    """`GET key` in the protocol's own framing (an array of two bulk strings), as redis-py packs it,
    without its encoder and buffer joins: for the reads made on every request."""
    raw = key.encode()
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(raw), raw)


# `django.core.cache.cache` is a proxy (isinstance sees the proxy), so these ask for the method.
def get_bytes(cache, key: str) -> bytes | None:
    """`cache.get_bytes` where the backend has it (Redis); elsewhere (the embedded cache table) the
    bytes go through the backend's own get/set, which is equally correct there."""
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


# --- the embedded default's shared store ---------------------------------------------------------------
class DatabaseCache(DjangoDatabaseCache):
    """Django's database cache, with the writes every worker process must agree on made atomic.

    The embedded default (no REDIS_URL) keeps its cache in a table of its own database
    (`mcpauth_service.models.CacheEntry`, created by the migrations), so that every gunicorn worker
    reads and writes the same entries: introspection answers and their tombstones, rate-limit
    counters, CIMD documents and back-off, the tier generation (infra.localcache).

    Django's own writes count the table on every call, may cull live entries (a tombstone, a
    counter) when it grows, and swallow database errors (a tombstone that silently fails to land
    is a revocation lost). Here `set`/`add` are one upsert, errors propagate, only expired entries
    are ever removed, and `incr` reads and writes in one transaction: on PostgreSQL the row is
    locked (`FOR UPDATE`); on SQLite the embedded settings' `transaction_mode: IMMEDIATE` makes
    every transaction take the write lock first, so increments from all processes take turns.
    """

    PURGE_EVERY = 500  # writes per process between two sweeps of expired entries

    def __init__(self, table, params):
        super().__init__(table, params)
        self.table = table
        self._writes = itertools.count()

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> None:
        self._store(self.make_and_validate_key(key, version=version), value, timeout, only_if_absent=False)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        return self._store(self.make_and_validate_key(key, version=version), value, timeout, only_if_absent=True)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None) -> list:
        with transaction.atomic(using=self._db(write=True)):
            for key, value in data.items():
                self.set(key, value, timeout, version)
        return []

    def incr(self, key, delta=1, version=None) -> int:
        """Atomically add `delta` to a live integer entry (its expiry kept); ValueError when there is none."""
        key = self.make_and_validate_key(key, version=version)
        alias = self._db(write=True)
        connection = connections[alias]
        table, column = connection.ops.quote_name(self.table), connection.ops.quote_name
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(f"SELECT {column('value')}, {column('expires')} FROM {table} "
                           f"WHERE {column('cache_key')} = %s{lock}", [key])
            found = cursor.fetchone()
            if found is None or self._expired(connection, found[1]):
                raise ValueError(f"Key '{key}' not found")
            value = self._loads(connection, found[0]) + delta
            cursor.execute(f"UPDATE {table} SET {column('value')} = %s WHERE {column('cache_key')} = %s",
                           [self._dumps(value), key])
        return value

    # --- the few lines of SQL -------------------------------------------------------------------------
    def _db(self, write: bool) -> str:
        model = self.cache_model_class
        return router.db_for_write(model) if write else router.db_for_read(model)

    def _store(self, key: str, value, timeout, only_if_absent: bool) -> bool:
        alias = self._db(write=True)
        connection = connections[alias]
        table, column = connection.ops.quote_name(self.table), connection.ops.quote_name
        k, v, e = column("cache_key"), column("value"), column("expires")
        seconds = self.get_backend_timeout(timeout)
        expires = datetime.max if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)
        sql = (f"INSERT INTO {table} ({k}, {v}, {e}) VALUES (%s, %s, %s) "
               f"ON CONFLICT ({k}) DO UPDATE SET {v} = excluded.{v}, {e} = excluded.{e}")
        params = [key, self._dumps(value), self._adapt(connection, expires)]
        if only_if_absent:  # an expired entry counts as absent
            sql += f" WHERE {table}.{e} < %s"
            params.append(self._adapt(connection, tz_now()))
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written = cursor.rowcount == 1
            if next(self._writes) % self.PURGE_EVERY == 0:
                cursor.execute(f"DELETE FROM {table} WHERE {e} < %s", [self._adapt(connection, tz_now())])
        return written

    def _dumps(self, value) -> str:
        # As Django's DatabaseCache stores values, so that its get() reads them.
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    @staticmethod
    def _loads(connection, stored):
        return pickle.loads(base64.b64decode(connection.ops.process_clob(stored).encode()))

    @staticmethod
    def _adapt(connection, moment: datetime):
        if not settings.USE_TZ:
            moment = moment.replace(tzinfo=None)
        return connection.ops.adapt_datetimefield_value(moment)

    @staticmethod
    def _expired(connection, expires) -> bool:
        expression = models.Expression(output_field=models.DateTimeField())
        for converter in connection.ops.get_db_converters(expression) + expression.get_db_converters(connection):
            expires = converter(expires, expression, connection)
        return expires < tz_now()
