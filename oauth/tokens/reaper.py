"""The reaper: removes clients nobody uses and codes and tokens nobody can use any more.

Per project: open-registered and CIMD clients never used within `unused_client_days` of
registering, or idle for `idle_client_days`, are deleted — never one holding a live code, device
code or token. Expired codes, device codes and tokens are purged (revoked refresh tokens are kept until they would
have expired, so refresh-token reuse is still detected). Each run that did something is
written to the audit log as `reaper.run`. A setting of 0 days turns that rule off. Each run also
recounts the project's open-registered clients (`Project.open_client_count`, the cap's counter; `oauth.clients.quota`).
Revocation-feed entries whose tokens have expired are deleted (`oauth.tokens.feed`).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from oauth.clients import quota
from oauth.models import AccessToken, Application, AuthorizationRequest, DeviceGrant, Grant, RefreshToken
from oauth.tokens import feed
from projects.models import AuditEvent, Project

REAPED_PATHS = (Application.Path.OPEN, Application.Path.CIMD)
AUDIT_CLIENT_IDS = 100  # the audit event lists at most this many deleted client_ids


@dataclass
class ReaperReport:
    clients: list[str] = field(default_factory=list)
    grants: int = 0
    access_tokens: int = 0
    refresh_tokens: int = 0
    authorization_requests: int = 0
    device_grants: int = 0
    revoked_tokens: int = 0  # revocation-feed entries past their token's expiry

    @property
    def did_something(self) -> bool:
        return bool(self.clients or self.grants or self.access_tokens or self.refresh_tokens
                    or self.authorization_requests or self.device_grants or self.revoked_tokens)


def run(now: datetime | None = None) -> dict[str, ReaperReport]:
    """Reap every project; returns what was done, by project slug."""
    now = now or timezone.now()
    return {project.slug: reap_project(project, now) for project in Project.objects.order_by("pk").iterator()}


@transaction.atomic
def reap_project(project: Project, now: datetime) -> ReaperReport:
    remember_last_use(project)
    report = ReaperReport(clients=reap_clients(project, now))
    report.grants, report.access_tokens, report.refresh_tokens = purge_expired(project, now)
    report.authorization_requests = _delete(AuthorizationRequest.objects.expired(project, now))
    # RFC 8628 device codes, redeemed or not, like codes: kept until they expire (replays revoke).
    report.device_grants = _delete(DeviceGrant.objects.filter(project=project, expires__lte=now))
    report.revoked_tokens = feed.purge_expired(project, now)
    if report.did_something:
        AuditEvent.record(project, "reaper.run", actor="reaper", clients_deleted=len(report.clients),
                          client_ids=report.clients[:AUDIT_CLIENT_IDS], grants_purged=report.grants,
                          access_tokens_purged=report.access_tokens, refresh_tokens_purged=report.refresh_tokens,
                          authorization_requests_purged=report.authorization_requests,
                          device_grants_purged=report.device_grants,
                          revocation_feed_purged=report.revoked_tokens)
    quota.recount_open_clients(project)  # last: it locks the project row until this commit
    return report


def _refresh_horizon(project: Project, now: datetime) -> datetime | None:
    return now - timedelta(seconds=project.refresh_token_ttl) if project.refresh_token_ttl else None


def live_refresh_tokens(project: Project, now: datetime) -> Q:
    """Unrevoked and within the refresh lifetime, counted from issue or from its last access token."""
    horizon = _refresh_horizon(project, now)
    live = Q(revoked__isnull=True)
    if horizon is not None:
        live &= Q(created__gt=horizon) | Q(access_token__expires__gt=horizon)
    return live


def with_live_credentials(project: Project, now: datetime) -> Q:
    """Clients holding an unexpired code, an unexpired access token or a live refresh token."""
    client = OuterRef("pk")
    return (
        Q(Exists(Grant.objects.filter(application=client, expires__gt=now)))
        | Q(Exists(DeviceGrant.objects.filter(application=client, expires__gt=now)))
        | Q(Exists(AccessToken.objects.filter(application=client, expires__gt=now)))
        | Q(Exists(RefreshToken.objects.filter(live_refresh_tokens(project, now), application=client)))
    )


def remember_last_use(project: Project) -> None:
    """Copy each client's latest code or token time into `last_used_at` before they are purged."""
    latest_token = AccessToken.objects.filter(application=OuterRef("pk")).order_by("-created").values("created")[:1]
    latest_grant = Grant.objects.filter(application=OuterRef("pk")).order_by("-created").values("created")[:1]
    used = Coalesce(Subquery(latest_token), Subquery(latest_grant))
    has_any = Q(Exists(AccessToken.objects.filter(application=OuterRef("pk")))) | Q(
        Exists(Grant.objects.filter(application=OuterRef("pk"))))
    Application.objects.filter(has_any, project=project, registration_path__in=REAPED_PATHS).update(
        last_used_at=Greatest(Coalesce("last_used_at", used), Coalesce(used, "last_used_at")))


def reapable_clients(project: Project, now: datetime) -> QuerySet:
    rules = Q()
    if project.unused_client_days:
        rules |= Q(last_used_at__isnull=True, created__lt=now - timedelta(days=project.unused_client_days))
    if project.idle_client_days:
        rules |= Q(last_used_at__lt=now - timedelta(days=project.idle_client_days))
    if not rules:
        return Application.objects.none()
    return (Application.objects.filter(project=project, registration_path__in=REAPED_PATHS)
            .filter(rules).exclude(with_live_credentials(project, now)))


def reap_clients(project: Project, now: datetime) -> list[str]:
    doomed = reapable_clients(project, now)
    client_ids = list(doomed.order_by("pk").values_list("client_id", flat=True))
    for batch in batches(client_ids):
        # Re-applies the live-credential test in the deleting statement itself.
        doomed.filter(client_id__in=batch).delete()
    return client_ids


def purge_expired(project: Project, now: datetime) -> tuple[int, int, int]:
    """Expired codes, spent refresh tokens past their lifetime, then expired unpaired access tokens."""
    grants = _delete(Grant.objects.filter(application__project=project, expires__lte=now))
    refresh = 0
    horizon = _refresh_horizon(project, now)
    if horizon is not None:
        dead = RefreshToken.objects.filter(application__project=project).exclude(live_refresh_tokens(project, now))
        # Revoked ones stay until their lifetime has passed: reuse detection needs them.
        dead = dead.filter(Q(revoked__isnull=True) | Q(revoked__lte=horizon))
        refresh = _delete(dead)
    access = _delete(AccessToken.objects.filter(application__project=project, expires__lte=now,
                                                refresh_token__isnull=True))
    return grants, access, refresh


# Rows deleted per statement: a bound on each statement's locks and duration, and well under
# PostgreSQL's 65,535 parameters per statement (parameters are bound server-side).
DELETE_BATCH = 5_000


def batches(values: list, size: int | None = None):
    size = size or DELETE_BATCH  # read at call time (tests shrink it)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _delete(queryset: QuerySet) -> int:
    pks = list(queryset.values_list("pk", flat=True))
    for batch in batches(pks):
        queryset.model.objects.filter(pk__in=batch).delete()
    return len(pks)
