"""Per-day activity of a project, counted from its audit log, drawn as server-rendered bars."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from oauth.models import AccessToken
from projects.models import AuditEvent, Project

DAYS = 14


def series_of(kind: str) -> str | None:
    """Which chart an audit event kind counts towards (kinds are `<subject>.<verb>`)."""
    if any(word in kind for word in ("fail", "denied", "invalid", "reuse", "replay", "refused", "rejected", "error")):
        return "failures"
    if kind.startswith(("client.registered", "registration.", "cimd.")):
        return "registrations"
    if kind.startswith(("consent.", "authorization.", "authorize.", "handoff.completed")):
        return "authorizations"
    if kind.startswith(("token.issued", "token.refreshed", "token.exchanged", "exchange.")):
        return "tokens"
    return None


SERIES = [
    ("registrations", "Registrations"),
    ("authorizations", "Authorizations"),
    ("tokens", "Tokens issued"),
    ("failures", "Failures"),
]


@dataclass
class Bar:
    day: date
    count: int
    height: int  # percent of the chart's tallest bar


@dataclass
class Chart:
    key: str
    title: str
    total: int
    bars: list[Bar]


def charts(project: Project, days: int = DAYS) -> list[Chart]:
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = (
        AuditEvent.objects.filter(project=project, created_at__date__gte=first)
        .annotate(day=TruncDate("created_at")).values("day", "kind").annotate(n=Count("id"))
    )
    counts: dict[str, dict[date, int]] = {key: {} for key, _ in SERIES}
    for row in rows:
        key = series_of(row["kind"])
        if key:
            counts[key][row["day"]] = counts[key].get(row["day"], 0) + row["n"]
    # Token issuance may not be audited event by event; access-token rows still in the table
    # count too (per day, the larger of the two, so nothing is counted twice).
    issued = (
        AccessToken.objects.filter(application__project=project, created__date__gte=first)
        .annotate(day=TruncDate("created")).values("day").annotate(n=Count("id"))
    )
    for row in issued:
        counts["tokens"][row["day"]] = max(counts["tokens"].get(row["day"], 0), row["n"])
    span = [first + timedelta(days=i) for i in range(days)]
    result = []
    for key, title in SERIES:
        values = [counts[key].get(day, 0) for day in span]
        top = max(values) or 1
        bars = [Bar(day, n, round(100 * n / top)) for day, n in zip(span, values, strict=True)]
        result.append(Chart(key, title, sum(values), bars))
    return result
