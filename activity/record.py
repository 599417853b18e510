"""Counting what a project does (issue 21): `record` is the one call at every point that matters.

Cheap on the hot paths. With Redis (REDIS_URL) a record is one pipelined round trip: HINCRBY on the
minute's hash (which expires after KEEP_SECONDS) and SADD of the minute to the set the rollup reads;
`activity.rollup` (a Celery beat task) adds the closed minutes to the `activity_count` table. In the
embedded default (no Redis: SQLite, eager Celery) the table's row is incremented at once (an UPSERT),
which every worker shares. The same call increments the Prometheus counters (`infra.metrics`),
labelled with the project's slug, so there is one place that records.

A record may carry a timeline event (`event`, an audit event of `projects.models.AuditEvent`'s
shape): with Redis it rides in the same round trip onto a list the rollup moves into the audit
log; without Redis it is written at once. Hot paths (issuing, refreshing, a token's first use)
thus write nothing more to the database than they did.

Redis unreachable: the count is dropped and logged (at most every WARN_EVERY seconds); the request goes on.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections, router
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra import metrics, rows
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
_warned_at = [-WARN_EVERY]

UPSERT = (
    "INSERT INTO activity_count (project_id, hour, client_id, kind, label, endpoint, count) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (project_id, hour, client_id, kind, label, endpoint) "
    "DO UPDATE SET count = activity_count.count + excluded.count"
)


def record(project: Project | None, kind: str, label: str = "", *, client_id: str = "", endpoint: str = "",
           event: AuditEvent | None = None) -> None:
    """Count one `kind`/`label` for `project` (and `client_id`, `endpoint`) in this minute; with
    `event`, also add it to the audit log (the grant timeline)."""
    metrics.activity(getattr(project, "slug", ""), kind, label, endpoint)
    if project is None:
        return
    key = (project.pk, client_id[:255], kind, label[:128], endpoint[:64])
    try:
        store().add(key, event)
    except UNREACHABLE as exc:
        _warn(exc)


def event(project: Project, kind: str, *, client_id: str = "", subject: str = "", request=None,
          **detail: Any) -> AuditEvent:
    """An unsaved timeline event: `subject` (the end user's `sub`) as its actor; the caller's
    address and, with `request`, its user agent."""
    if request is not None:
        detail["user_agent"] = request.headers.get("User-Agent", "")[:USER_AGENT_LENGTH]
    return AuditEvent.new(project, kind, actor=subject, client_id=client_id, request=request, **detail)


def note(project: Project, event: AuditEvent) -> None:
    """A timeline event with nothing to count, written as `record` writes its event."""
    try:
        store().add(None, event)
    except UNREACHABLE as exc:
        _warn(exc)


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

    def add(self, key: tuple | None, event: AuditEvent | None) -> None:
        commands: list[tuple] = []
        if key is not None:
            minute = minute_now()
            name = self.minute_key(minute)
            commands += [("HINCRBY", name, json.dumps(key, separators=(",", ":")), 1),
                         ("EXPIRE", name, KEEP_SECONDS), ("SADD", self.minutes, minute)]
        if event is not None:
            commands.append(("RPUSH", self.events, encode_event(event)))
        self.send(*commands)


class TableStore:
    """The embedded default: the table itself, incremented in place; events written at once."""

    def add(self, key: tuple | None, event: AuditEvent | None) -> None:
        if key is not None:
            upsert([(key, 1)], hour_of(minute_now()))
        if event is not None:
            rows.insert(event)


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
