"""Counting what a project does (issue 21): `record` is the one call at every point that matters.

Nothing on the hot paths. `record` (and `note`) add to this process's pending counts (key ->
count) and events, under a lock, and return; one background thread per process (started by the
first record in that process, so each forked or spawned web worker has its own) writes what is
pending every ACTIVITY_FLUSH_SECONDS (default 1 s), sooner when FLUSH_AT entries are pending, and
once more at interpreter exit (atexit), in one write:

- with Redis (REDIS_URL): one pipelined round trip, HINCRBY on the current minute's hash (which
  expires after KEEP_SECONDS) and SADD of the minute to the set the rollup reads, RPUSH of the
  events onto the list the rollup moves into the audit log; `activity.rollup` (a Celery beat task)
  adds the closed minutes to the `activity_count` table. A count is written in the minute it is
  flushed (at most a flush interval after it happened), never into a minute the rollup may have
  closed;
- in the embedded default (no Redis: SQLite, eager Celery): one executemany of the UPSERT that
  increments the hour's rows and one bulk insert of the events, so the write lock is taken once a
  second per process instead of once per request.

The same call increments the Prometheus counters (`infra.metrics`) at once, labelled with the
project's slug, so there is one place that records.

Readers that must be exact within this process (`activity.queries`, the rollup, the grant
timelines; tests) call `flush()` first: it writes what is pending now, waiting for a write already
under way. Other processes' pending counts appear within their flush interval.

Redis (or, in the embedded default, the database) unreachable: the flush drops what it took and
logs it (at most every WARN_EVERY seconds); no request waits for it. At most MAX_PENDING entries
wait in a process; beyond that (a writer that cannot keep up) new ones are dropped, logged alike.
A worker killed without running its exit handlers loses at most its last flush interval.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections, router, transaction
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import metrics
from projects.models import AuditEvent, Project

from .models import Count

logger = logging.getLogger("mcpauth.activity")

# What is counted; each a `kind` with a bounded `label`.
ISSUED = "issued"  # an access token, by grant type (a refresh is `refresh_token`)
REVOKED = "revoked"  # by where: `endpoint` (RFC 7009), `client` (all of a client's), `end_user`
REGISTERED = "registered"  # a client, by path: `open`, `secret`, `cimd`, `dashboard`, `cli`
AUTHORIZED = "authorized"  # an authorization code issued to a client for an end user
SIGNIN = "signin"  # `ok`, `failed`, `rate_limited`
CONSENT = "consent"  # `allowed`, `denied`
REFUSED = "refused"  # every refused OAuth request, by RFC error code (`rate_limited` for a 429) and endpoint
DETECTED = "detected"  # `code_replay`, `refresh_reuse`: attacks the server answered by revoking a grant
KINDS = (ISSUED, REVOKED, REGISTERED, AUTHORIZED, SIGNIN, CONSENT, REFUSED, DETECTED)

# Counting never fails a request: Redis (or, in the embedded default, the database) unreachable
# drops the count, logged at most every WARN_EVERY seconds.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, DatabaseError)
KEEP_SECONDS = 3 * 86400  # a minute's hash outlives any rollup delay worth waiting for
USER_AGENT_LENGTH = 200
WARN_EVERY = 10.0
FLUSH_AT = 1000  # pending entries (distinct counts + events) that wake the writer before its interval
MAX_PENDING = 50_000  # beyond: dropped (a writer that cannot keep up: Redis or the database unreachable)
_warned_at = [-WARN_EVERY]

UPSERT = (
    "INSERT INTO activity_count (project_id, hour, client_id, kind, label, endpoint, count) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (project_id, hour, client_id, kind, label, endpoint) "
    "DO UPDATE SET count = activity_count.count + excluded.count"
)


def record(project: Project | None, kind: str, label: str = "", *, client_id: str = "", endpoint: str = "",
           event: AuditEvent | None = None) -> None:
    """Count one `kind`/`label` for `project` (and `client_id`, `endpoint`), written within a flush
    interval (see the module docstring); with `event`, also add it to the audit log (the grant timeline)."""
    metrics.activity(getattr(project, "slug", ""), kind, label, endpoint)
    if project is None:
        return
    _add((project.pk, client_id[:255], kind, label[:128], endpoint[:64]), event)


def event(project: Project, kind: str, *, client_id: str = "", subject: str = "", request=None,
          **detail: Any) -> AuditEvent:
    """An unsaved timeline event: `subject` (the end user's `sub`) as its actor; the caller's
    address and, with `request`, its user agent (from META: `request.headers` would build a dictionary
    of every header for that one read, on every code redemption and refresh)."""
    if request is not None:
        detail["user_agent"] = request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH]
    return AuditEvent.new(project, kind, actor=subject, client_id=client_id, request=request, **detail)


def note(project: Project, event: AuditEvent) -> None:
    """A timeline event with nothing to count, written as `record` writes its event."""
    _add(None, event)


def refusal(project: Project | None, endpoint: str, error: str, client_id: str) -> None:
    """`infra.observe`'s refusal hook: one count per refused request, with its route and client."""
    record(project, REFUSED, error, client_id=client_id or "", endpoint=endpoint)


def first_use(project: Project, checksum: str, client_id: str, subject: str, seconds: int) -> None:
    """A token of an end user's grant seen for the first time (introspection): one timeline event per
    token, guarded by an add-if-absent on the shared cache that lives as long as the token."""
    try:
        first = cache.add(f"activity:used:{checksum}", 1, timeout=max(1, seconds))
    except UNREACHABLE as exc:  # Redis down: the answer goes on without it
        _warn(exc)
        return
    if first:
        note(project, event(project, "token.first_used", client_id=client_id, subject=subject))


# --- what is pending in this process, and its writer ---------------------------------------------

class Pending:
    """This process's counts (key -> n) and events not written yet, and the thread that writes them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()  # held for a dict update or a swap, never for a write
        self.writing = threading.Lock()  # one write at a time: a reader's flush waits for one under way
        self.counts: dict[tuple, int] = {}
        self.events: list[AuditEvent] = []
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def take(self) -> tuple[dict[tuple, int], list[AuditEvent]]:
        with self.lock:
            counts, events = self.counts, self.events
            self.counts, self.events = {}, []
        return counts, events


_pending = Pending()


def _add(key: tuple | None, event: AuditEvent | None) -> None:
    pending = _pending if _pending.pid == os.getpid() else _forked()
    with pending.lock:
        size = len(pending.counts) + len(pending.events)
        if size < MAX_PENDING:
            if key is not None:
                pending.counts[key] = pending.counts.get(key, 0) + 1
            if event is not None:
                pending.events.append(event)
    if size >= MAX_PENDING:
        _warn(OverflowError(f"{size} entries pending"))
        return
    if pending.thread is None:
        _start(pending)
    if size + 1 >= FLUSH_AT:
        if pending.thread is not None:
            pending.wake.set()
        else:
            flush()


def _start(pending: Pending) -> None:
    """Start this process's writer, unless one runs or none is wanted (ACTIVITY_FLUSH_SECONDS 0:
    what is pending is written by `flush()`, at FLUSH_AT entries and at exit; the tests' setting)."""
    seconds = settings.ACTIVITY_FLUSH_SECONDS
    if seconds <= 0:
        return
    with pending.lock:
        if pending.thread is None:
            pending.thread = threading.Thread(target=_write_every, args=(pending, seconds),
                                              name="activity-writer", daemon=True)
            pending.thread.start()


def _write_every(pending: Pending, seconds: float) -> None:
    while pending is _pending:
        pending.wake.wait(seconds)
        pending.wake.clear()
        try:
            _write(pending)
        except Exception:  # never let the writer die: what it took is dropped, the next flush goes on
            logger.exception("activity writer failed")


def flush() -> None:
    """Write what this process has pending now (one Redis round trip, or one table write), after a
    write already under way; what cannot be written is dropped and logged."""
    _write(_pending if _pending.pid == os.getpid() else _forked())


def _write(pending: Pending) -> None:
    with pending.writing:
        counts, events = pending.take()
        if not counts and not events:
            return
        try:
            store().write(counts, events)
        except UNREACHABLE as exc:
            _warn(exc)


def discard() -> None:
    """Forget what is pending (tests: nothing outlives the test that recorded it)."""
    (_pending if _pending.pid == os.getpid() else _forked()).take()


def _forked() -> Pending:
    """A new process (a forked worker): the parent's pending entries are the parent's to write."""
    global _pending
    with _fork_lock:
        if _pending.pid != os.getpid():
            _pending = Pending()
    return _pending


_fork_lock = threading.Lock()


def _after_fork() -> None:
    global _pending, _fork_lock
    _fork_lock = threading.Lock()  # another thread may have held it at the fork
    _pending = Pending()


os.register_at_fork(after_in_child=_after_fork)


@atexit.register
def _at_exit() -> None:
    if _pending.pid == os.getpid():
        try:
            flush()
        except Exception:  # the interpreter is going: log, never raise from an exit handler
            logger.exception("activity not written at exit")


# --- the stores ----------------------------------------------------------------------------------

def minute_now() -> int:
    return int(time.time()) // 60


def hour_of(minute: int) -> datetime:
    return datetime.fromtimestamp(minute // 60 * 3600, UTC)


class RedisStore:
    """Per-minute hashes `activity:m:{minute}` (field: the JSON of the count's key), the set of
    minutes written `activity:minutes`, the event list `activity:events`; keys are the cache's."""

    def __init__(self, client):
        self.client = client  # redis-py, for the rollup and the readers
        # the hot path's writes: one packed write and its replies (infra.cache), no client layers
        self.send = getattr(cache, "send_commands")  # noqa: B009 - `cache` is a proxy to the backend
        self.minutes = cache.make_key("activity:minutes")
        self.events = cache.make_key("activity:events")

    def minute_key(self, minute: int) -> str:
        return cache.make_key(f"activity:m:{minute}")

    def write(self, counts: dict[tuple, int], events: list[AuditEvent]) -> None:
        """`counts` into the current minute's hash and `events` onto the list, in one round trip."""
        commands: list[tuple] = []
        if counts:
            minute = minute_now()
            name = self.minute_key(minute)
            commands += [("HINCRBY", name, json.dumps(key, separators=(",", ":")), n) for key, n in counts.items()]
            commands += [("EXPIRE", name, KEEP_SECONDS), ("SADD", self.minutes, minute)]
        if events:
            commands.append(("RPUSH", self.events, *(encode_event(e) for e in events)))
        self.send(*commands)


class TableStore:
    """The embedded default: the table itself, incremented in place, and the audit log."""

    def write(self, counts: dict[tuple, int], events: list[AuditEvent]) -> None:
        """`counts` into the current hour's rows (one executemany) and `events` (one insert), in one
        transaction (a savepoint inside a caller's)."""
        alias = router.db_for_write(Count)
        connection = connections[alias]
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()  # the writer thread's connection, after an error
        with transaction.atomic(using=alias):
            if counts:
                upsert(list(counts.items()), hour_of(minute_now()))
            if events:
                AuditEvent.objects.using(alias).bulk_create(events)


def upsert(counts: list[tuple[tuple, int]], hour: datetime) -> None:
    """Add `counts` ((project_id, client_id, kind, label, endpoint), n) to the hour's rows."""
    connection = connections[router.db_for_write(Count)]
    value = connection.ops.adapt_datetimefield_value(hour)
    with connection.cursor() as cursor:
        cursor.executemany(UPSERT, [(p, value, c, k, lbl, e, n) for (p, c, k, lbl, e), n in counts])


def encode_event(event: AuditEvent) -> str:
    return json.dumps({"project": event.project_id, "kind": event.kind, "actor": event.actor,
                       "client_id": event.client_id, "ip": event.ip, "detail": event.detail,
                       "at": event.created_at.isoformat()}, separators=(",", ":"), default=str)


def decode_event(text: bytes | str) -> AuditEvent:
    data = json.loads(text)
    return AuditEvent(project_id=data["project"], kind=data["kind"], actor=data["actor"], client_id=data["client_id"],
                      ip=data["ip"], detail=data["detail"], created_at=datetime.fromisoformat(data["at"]))


@functools.cache
def _store_for(url: str) -> RedisStore | TableStore:
    return RedisStore(get_redis_connection("default")) if url else TableStore()


def store() -> RedisStore | TableStore:
    return _store_for(settings.REDIS_URL or "")


def _warn(exc: Exception) -> None:
    now = time.monotonic()
    if now - _warned_at[0] >= WARN_EVERY:
        _warned_at[0] = now
        logger.warning("activity not counted (%s: %s)", type(exc).__name__, exc)
