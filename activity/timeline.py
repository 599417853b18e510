"""Grant timelines (issue 21): for each grant (an end user × a client), its story from the audit log.

In order: the client's registration (or CIMD fetch), the authorization (a code issued), consent,
the code redeemed, the first use of each token at the MCP server (its first introspection), each
refresh with its address and user agent, revocation; with warnings for a token issued but not used
within UNUSED_MINUTES, a grant refreshed from two networks (/24, /64) within TWO_NETWORKS_SECONDS,
and refresh-token reuse.

Every step is an `AuditEvent` of the project. Steps about an end user carry their `sub` as the
event's actor, or (those written on the token path, which has only the user's pk at hand) the pk
as `detail.user`; a replay or reuse names the refresh family, which ties it to its grant; a client's
registration or an operator revoking all its tokens belongs to every grant of the client, an
operator revoking all of an end user's grants to every grant of theirs.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise

from django.db.models import Q
from django.utils import timezone

from projects.models import AuditEvent, Project, User

from . import record

UNUSED_MINUTES = 10
TWO_NETWORKS_SECONDS = 600
MAX_EVENTS = 5000  # the newest events read for one timeline request
MAX_GRANTS = 100

TITLES = {
    "client.registered": "Client registered",
    "authorization.code_issued": "Authorized: code issued",
    "consent.allowed": "Consent given",
    "consent.denied": "Consent denied",
    "token.code_redeemed": "Code redeemed for tokens",
    "token.first_used": "Token first used at the MCP server",
    "token.refreshed": "Refreshed",
    "token.code_replayed": "Code replay detected: grant revoked",
    "token.refresh_reuse_detected": "Refresh token reuse detected: grant revoked",
    "token.revoked": "Revoked",
    "grants.revoked": "All of the end user's grants revoked by an operator",
}
# Events whose actor is the end user's `sub`; events that name the end user's pk as `detail.user`.
BY_SUBJECT = ("authorization.code_issued", "consent.allowed", "consent.denied", "token.first_used")
BY_USER = ("token.code_redeemed", "token.refreshed", "token.revoked")
BY_FAMILY = ("token.code_replayed", "token.refresh_reuse_detected")
BAD = {"consent.denied", "token.code_replayed", "token.refresh_reuse_detected"}


@dataclass
class Step:
    at: datetime
    kind: str
    title: str
    ip: str | None
    user_agent: str
    detail: dict

    @property
    def bad(self) -> bool:
        return self.kind in BAD

    def as_json(self) -> dict:
        return {"at": self.at.isoformat().replace("+00:00", "Z"), "kind": self.kind, "title": self.title,
                "ip": self.ip, "user_agent": self.user_agent, "detail": self.detail}


@dataclass
class Grant:
    client_id: str
    subject: str
    steps: list[Step] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"client_id": self.client_id, "subject": self.subject, "warnings": self.warnings,
                "events": [s.as_json() for s in self.steps]}


def step_of(event: AuditEvent) -> Step:
    detail = dict(event.detail or {})
    detail.pop("user", None)  # a pk: the grant's subject says who
    title = TITLES[event.kind]
    if event.kind == "client.registered" and (detail.get("path") or event.actor) == "cimd":
        title = "Client ID Metadata Document fetched: client registered"
    elif event.kind == "client.registered":
        path = detail.get("path") or detail.get("registration_path") or event.actor
        title = f"Client registered ({path})" if path in ("open", "secret", "dashboard") else title
    elif event.kind == "token.revoked" and "token_type" not in detail:
        title = "All of the client's tokens revoked by an operator"
    return Step(at=event.created_at, kind=event.kind, title=title, ip=event.ip,
                user_agent=detail.pop("user_agent", ""), detail=detail)


def grants(project: Project, *, client_id: str = "", subject: str = "", now: datetime | None = None) -> list[Grant]:
    """The grants of `project` (of one client, one end user, or both), most recently active first."""
    record.flush()  # this process's pending events first (in the embedded default they go to the table)
    by_subject = Q(kind__in=BY_SUBJECT) & ~Q(actor="")
    by_user = Q(kind__in=BY_USER, detail__has_key="user")
    if subject:
        pk = User.objects.filter(project=project, subject=subject).values_list("pk", flat=True).first()
        by_subject &= Q(actor=subject)
        by_user &= Q(detail__user=pk) if pk is not None else Q(pk__in=[])
    events = AuditEvent.objects.filter(by_subject | by_user, project=project)
    if client_id:
        events = events.filter(client_id=client_id)
    events = list(events.order_by("-created_at", "-pk")[:MAX_EVENTS])
    subjects_of = dict(User.objects.filter(project=project, pk__in={e.detail["user"] for e in events
                                                                    if e.kind in BY_USER})
                       .values_list("pk", "subject"))
    found: dict[tuple[str, str], Grant] = {}
    family_of: dict[str, tuple[str, str]] = {}
    for event in reversed(events):
        who = subjects_of.get(event.detail["user"], "") if event.kind in BY_USER else event.actor
        if not who:
            continue  # an end user deleted since
        key = (event.client_id, who)
        found.setdefault(key, Grant(*key)).steps.append(step_of(event))
        if (event.detail or {}).get("family"):
            family_of[event.detail["family"]] = key
    if not found:
        return []
    clients = {c for c, _ in found}
    subjects = {s for _, s in found}
    shared = AuditEvent.objects.filter(project=project).filter(
        Q(kind="client.registered", client_id__in=clients)
        | Q(kind="token.revoked", client_id__in=clients, detail__has_key="reason")
        | Q(kind__in=BY_FAMILY, client_id__in=clients)
        | Q(kind="grants.revoked", detail__subject__in=list(subjects))
    ).order_by("created_at", "pk")[:MAX_EVENTS]
    for event in shared:
        for grant in _grants_of(event, found, family_of):
            grant.steps.append(step_of(event))
    now = now or timezone.now()
    result = list(found.values())
    for grant in result:
        grant.steps.sort(key=lambda s: s.at)
        grant.warnings = warnings(grant.steps, now)
    result.sort(key=lambda g: g.steps[-1].at, reverse=True)
    return result[:MAX_GRANTS]


def _grants_of(event: AuditEvent, found: dict, family_of: dict) -> list[Grant]:
    if event.kind in BY_FAMILY:
        key = family_of.get((event.detail or {}).get("family", ""))
        return [found[key]] if key else []
    if event.kind == "grants.revoked":
        return [g for (_, s), g in found.items() if s == event.detail.get("subject")]
    return [g for (c, _), g in found.items() if c == event.client_id]


def network(ip: str | None) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) an address is in."""
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network(f"{ip}/{24 if address.version == 4 else 64}", strict=False))


def warnings(steps: list[Step], now: datetime) -> list[dict]:
    found = []
    unused = timedelta(minutes=UNUSED_MINUTES)
    for i, step in enumerate(steps):
        if step.kind == "token.code_redeemed" and now - step.at > unused:
            used = [s for s in steps[i + 1:] if s.kind == "token.first_used" and s.at - step.at <= unused]
            if not used:
                found.append({"code": "never_used", "at": _iso(step.at),
                              "message": f"Tokens issued at {step.at:%Y-%m-%d %H:%M} UTC were not used at the "
                                         f"MCP server within {UNUSED_MINUTES} minutes."})
    refreshes: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        if step.kind == "token.refreshed":
            refreshes[step.detail.get("family", "")].append(step)
    window = timedelta(seconds=TWO_NETWORKS_SECONDS)
    for family in refreshes.values():
        for earlier, later in pairwise(family):
            if later.at - earlier.at <= window and network(earlier.ip) != network(later.ip):
                found.append({"code": "two_networks", "at": _iso(later.at),
                              "message": f"Refreshed from two networks within {TWO_NETWORKS_SECONDS // 60} minutes: "
                                         f"{earlier.ip} and {later.ip}."})
    for step in steps:
        if step.kind == "token.refresh_reuse_detected":
            found.append({"code": "refresh_reuse", "at": _iso(step.at),
                          "message": "A spent refresh token was used again; the grant was revoked."})
    return found


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
