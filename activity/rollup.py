"""The rollup: Redis's closed minutes of counts into `activity_count`, buffered events into the audit log.

Exact and idempotent. Only closed minutes are rolled up (older than LAG_MINUTES, so no worker still
writes to them). A minute is claimed by inserting its `RolledMinute` row in the same transaction that
adds its counts: a second rollup, on this worker or another at the same moment, waits for that row
and then finds it taken (ON CONFLICT DO NOTHING), so the minute is added once; a rollup that fails
adds nothing and leaves the minute to the next. The hash itself is deleted only afterwards (and
expires anyway), and readers skip minutes that have a `RolledMinute` row.

Events move with LPOP (each popped by one rollup only) and are inserted in one statement; a failed
insert pushes them back.
"""

from __future__ import annotations

import json

from django.db import connections, router, transaction

from projects.models import AuditEvent

from . import record
from .models import Count

LAG_MINUTES = 2  # the current minute and the one before may still be written to
EVENT_BATCH = 1000


def run(newest: int | None = None) -> dict[str, int]:
    """One rollup (the beat task's body): {"minutes": rolled now, "events": moved now}. `newest`: the
    last minute to roll up (tests close the current minute this way), else LAG_MINUTES ago."""
    record.flush()  # this process's pending counts and events first
    store = record.store()
    if not isinstance(store, record.RedisStore):
        return {"minutes": 0, "events": 0}  # the embedded default counts into the table directly
    newest = record.minute_now() - LAG_MINUTES if newest is None else newest
    return {"minutes": roll_minutes(store, newest), "events": move_events(store)}


def closed_minutes(store: record.RedisStore, newest: int) -> list[int]:
    return sorted(m for m in (int(v) for v in store.client.smembers(store.minutes)) if m <= newest)


def roll_minutes(store: record.RedisStore, newest: int) -> int:
    rolled = 0
    for minute in closed_minutes(store, newest):
        rolled += roll_minute(store, minute)
        store.client.delete(store.minute_key(minute))
        store.client.srem(store.minutes, minute)
    return rolled


def roll_minute(store: record.RedisStore, minute: int) -> int:
    """Add one closed minute's counts, once; 1 if this call added them, 0 if another had."""
    connection = connections[router.db_for_write(Count)]
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO activity_rolled_minute (minute, rolled_at) VALUES (%s, %s) "
                           "ON CONFLICT (minute) DO NOTHING RETURNING minute",
                           [minute, connection.ops.adapt_datetimefield_value(record.hour_of(minute))])
            if cursor.fetchone() is None:
                return 0
        counts = store.client.hgetall(store.minute_key(minute))
        if counts:
            record.upsert([(tuple(json.loads(field)), int(n)) for field, n in counts.items()], record.hour_of(minute))
    return 1


def move_events(store: record.RedisStore) -> int:
    moved = 0
    while True:
        batch = store.client.lpop(store.events, EVENT_BATCH) or []
        if not batch:
            return moved
        try:
            AuditEvent.objects.bulk_create([record.decode_event(text) for text in batch])
        except Exception:
            store.client.rpush(store.events, *batch)  # not lost: the next rollup tries again
            raise
        moved += len(batch)


def unrolled(store: record.RedisStore) -> dict[int, dict[bytes, bytes]]:
    """Every minute's counts still in Redis, {minute: hash}; some may have been rolled up already
    (the reader skips those with a RolledMinute row, read after this)."""
    minutes = sorted(int(v) for v in store.client.smembers(store.minutes))
    if not minutes:
        return {}
    pipe = store.client.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(store.minute_key(minute))
    return dict(zip(minutes, pipe.execute(), strict=True))
