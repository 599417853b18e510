"""Reading the counts: the table plus the minutes not rolled up yet, so numbers are live.

`summary(project, "24h" | "7d" | "30d")` is what the overview's charts and the management API show:
series per hour (24 h) or per day (7 d, 30 d), totals by kind and label, a per-client breakdown
and the failure reasons (endpoint and RFC error code). Times are UTC.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connections, router, transaction

from projects.models import Project

from . import record, rollup
from .models import Count, RolledMinute

RANGES = {"24h": (24, timedelta(hours=1)), "7d": (7, timedelta(days=1)), "30d": (30, timedelta(days=1))}
DEFAULT_RANGE = "24h"

# The charts: a title and which counts make each.
SERIES = (
    ("tokens", "Tokens issued", {record.ISSUED}),
    ("authorizations", "Authorizations", {record.AUTHORIZED}),
    ("registrations", "Registrations", {record.REGISTERED}),
    ("failures", "Refused requests", {record.REFUSED}),
)


@dataclass
class Summary:
    range: str
    starts: list[datetime]  # each bucket's start
    series: dict[str, list[int]]  # chart key -> count per bucket
    totals: dict[str, dict[str, int]]  # kind -> label -> count
    clients: list[dict] = field(default_factory=list)  # {"client_id", "issued", "refused"}, busiest first
    failures: list[dict] = field(default_factory=list)  # {"endpoint", "error", "count"}, most first

    def as_json(self) -> dict:
        return {"range": self.range, "buckets": [s.isoformat().replace("+00:00", "Z") for s in self.starts],
                "series": self.series, "totals": self.totals, "clients": self.clients, "failures": self.failures}


def buckets(range_key: str, now: datetime | None = None) -> tuple[list[datetime], timedelta]:
    count, step = RANGES[range_key]
    now = (now or datetime.now(UTC)).astimezone(UTC)
    last = now.replace(minute=0, second=0, microsecond=0)
    if step == timedelta(days=1):
        last = last.replace(hour=0)
    return [last - step * (count - 1 - i) for i in range(count)], step


def counts(project: Project, since: datetime) -> dict[tuple, int]:
    """{(hour, client_id, kind, label, endpoint): n} of `project` from the hour `since` on."""
    record.flush()  # this process's pending counts first: what it just counted is shown
    store = record.store()
    live = rollup.unrolled(store) if isinstance(store, record.RedisStore) else {}
    connection = connections[router.db_for_read(Count)]
    outer = connection.in_atomic_block  # e.g. a test's transaction: the isolation level is not ours to set
    with transaction.atomic(using=connection.alias):
        if connection.vendor == "postgresql" and not outer:
            # one snapshot for both reads: a minute is either rolled up (in the table) or not (read from Redis)
            connection.cursor().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rolled = set(RolledMinute.objects.using(connection.alias).filter(minute__in=list(live))
                     .values_list("minute", flat=True))
        table = list(Count.objects.using(connection.alias).filter(project=project, hour__gte=since)
                     .values_list("hour", "client_id", "kind", "label", "endpoint", "count"))
    totals: dict[tuple, int] = defaultdict(int)
    for hour, client_id, kind, label, endpoint, n in table:
        totals[(hour, client_id, kind, label, endpoint)] += n
    for minute, fields in live.items():
        hour = record.hour_of(minute)
        if minute in rolled or hour < since:
            continue
        for key, n in fields.items():
            project_id, client_id, kind, label, endpoint = json.loads(key)
            if project_id == project.pk:
                totals[(hour, client_id, kind, label, endpoint)] += int(n)
    return dict(totals)


def summary(project: Project, range_key: str = DEFAULT_RANGE, now: datetime | None = None) -> Summary:
    starts, step = buckets(range_key, now)
    found = counts(project, starts[0])
    series = {key: [0] * len(starts) for key, _, _ in SERIES}
    totals: dict[str, dict[str, int]] = {kind: {} for kind in record.KINDS}
    clients: dict[str, dict[str, int]] = defaultdict(lambda: {"issued": 0, "refused": 0})
    failures: dict[tuple[str, str], int] = defaultdict(int)
    for (hour, client_id, kind, label, endpoint), n in found.items():
        index = min(len(starts) - 1, int((hour - starts[0]) / step))
        for key, _, kinds in SERIES:
            if kind in kinds:
                series[key][index] += n
        totals.setdefault(kind, {})
        totals[kind][label] = totals[kind].get(label, 0) + n
        if client_id and kind in (record.ISSUED, record.REFUSED):
            clients[client_id][kind] += n
        if kind == record.REFUSED:
            failures[(endpoint, label)] += n
    return Summary(
        range=range_key, starts=starts, series=series, totals=totals,
        clients=sorted(({"client_id": c, **v} for c, v in clients.items()),
                       key=lambda c: (-c["issued"] - c["refused"], c["client_id"])),
        failures=sorted(({"endpoint": e, "error": err, "count": n} for (e, err), n in failures.items()),
                        key=lambda f: (-f["count"], f["endpoint"], f["error"])),
    )
