"""The overview's activity: `activity.queries.summary` drawn as server-rendered bars and tables.

The counts are the `activity` app's (every issuance, registration, authorization and refused request
as it happened, not the rows that survive), over 24 hours (by hour), 7 or 30 days (by day).
"""

from dataclasses import dataclass
from datetime import datetime

from activity import queries
from activity import record as kinds
from oauth.models import Application
from projects.models import Project

RANGE_TITLES = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}
# Labels an operator reads, for the totals' tables.
TOTALS = (
    (kinds.ISSUED, "Tokens issued, by grant type"),
    (kinds.REGISTERED, "Registrations, by path"),
    (kinds.SIGNIN, "Sign-ins"),
    (kinds.CONSENT, "Consent decisions"),
    (kinds.REVOKED, "Revocations"),
    (kinds.DETECTED, "Detected replays (grant revoked)"),
)


@dataclass
class Bar:
    start: datetime
    count: int
    height: int  # percent of the chart's tallest bar


@dataclass
class Chart:
    key: str
    title: str
    total: int
    bars: list[Bar]


@dataclass
class Activity:
    range: str
    range_title: str
    hourly: bool
    charts: list[Chart]
    totals: list[tuple[str, list[tuple[str, int]]]]  # (title, [(label, count)]) of the kinds that happened
    clients: list[dict]
    failures: list[dict]
    ranges: list[tuple[str, str]]


def chosen_range(value: str | None) -> str:
    return value if value in queries.RANGES else queries.DEFAULT_RANGE


def overview(project: Project, range_key: str | None = None) -> Activity:
    range_key = chosen_range(range_key)
    summary = queries.summary(project, range_key)
    charts = []
    for key, title, _ in queries.SERIES:
        values = summary.series[key]
        top = max(values) or 1
        bars = [Bar(start, n, round(100 * n / top)) for start, n in zip(summary.starts, values, strict=True)]
        charts.append(Chart(key, title, sum(values), bars))
    totals = [(title, sorted(summary.totals[kind].items(), key=lambda item: (-item[1], item[0])))
              for kind, title in TOTALS if summary.totals.get(kind)]
    return Activity(range=range_key, range_title=RANGE_TITLES[range_key], hourly=range_key == "24h",
                    charts=charts, totals=totals, clients=named(project, summary.clients[:20]),
                    failures=summary.failures, ranges=list(RANGE_TITLES.items()))


def named(project: Project, rows: list[dict]) -> list[dict]:
    """Each row with its client's name and dashboard id (none for a client deleted since)."""
    found = {client_id: (name or metadata.get("client_name") or "", pk) for client_id, name, metadata, pk in
             Application.objects.filter(project=project, client_id__in=[r["client_id"] for r in rows])
             .values_list("client_id", "name", "metadata", "pk")}
    return [{**row, "name": found.get(row["client_id"], ("", None))[0], "pk": found.get(row["client_id"], ("", None))[1]}
            for row in rows]
