"""Adding, changing and removing a project's identity providers, and unlinking identities: the one way
in and out. The CLI (`createidentityprovider`), the dashboard's Identity providers page and the
management API all call these, so each accepts exactly the same values and every change is audited.
The client secret is write-only: stored encrypted, never shown, never in the audit log."""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import transaction

from identity.models import IdentityProvider, Kind, UpstreamIdentity
from projects.models import AuditEvent, Project

DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}")
SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")  # RFC 6749 §3.3 scope-token


class ProviderRefused(ValueError):
    """A value that cannot be used; `field` names it, the message says why in plain words."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass
class ProviderSettings:
    kind: str
    name: str
    client_id: str
    client_secret: str = ""  # empty on a change: keep the stored one
    issuer: str = ""
    scopes: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    create_accounts: bool = True
    enabled: bool = True


def _text(name: str, value: str, limit: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise ProviderRefused(name, f"{name} must be 1 to {limit} printable characters.")
    return value


def _issuer(wanted: ProviderSettings) -> str:
    value = (wanted.issuer or "").strip()
    if any(ord(c) < 33 for c in value):
        raise ProviderRefused("issuer", "The issuer has spaces or control characters in it.")
    if wanted.kind == Kind.OIDC:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or len(value) > 2000:
            raise ProviderRefused("issuer", "An OpenID Connect provider needs its issuer: an https URL without query or fragment.")
        return value.rstrip("/")
    if wanted.kind == Kind.MICROSOFT:
        value = value or "common"
        if not TENANT.fullmatch(value):
            raise ProviderRefused("issuer", "For Microsoft, give the tenant: common, organizations, a tenant id or its domain.")
        return value
    if value:
        raise ProviderRefused("issuer", f"A {Kind(wanted.kind).label} provider takes no issuer.")
    return ""


def _domains(project: Project, wanted: ProviderSettings, row: IdentityProvider | None) -> list[str]:
    domains = list(dict.fromkeys(d.strip().lower().lstrip("@") for d in wanted.domains if d.strip()))
    bad = [d for d in domains if not DOMAIN.fullmatch(d)]
    if bad:
        raise ProviderRefused("domains", f"{bad[0][:100]} is not an email domain.")
    others = IdentityProvider.objects.of(project).exclude(pk=getattr(row, "pk", None))
    for other in others:
        taken = set(other.domains) & set(domains)
        if taken:
            raise ProviderRefused("domains", f"{sorted(taken)[0]} already belongs to {other.name}.")
    return domains


def _checked(project: Project, wanted: ProviderSettings, row: IdentityProvider | None) -> dict:
    if wanted.kind not in Kind.values:
        raise ProviderRefused("kind", "kind must be one of " + ", ".join(Kind.values) + ".")
    if row is None and not (wanted.client_secret or "").strip():
        raise ProviderRefused("client_secret", "The client secret from the provider is required.")
    scopes = list(dict.fromkeys(s for s in wanted.scopes if s))
    if not all(SCOPE.fullmatch(s) for s in scopes):
        raise ProviderRefused("scopes", "Each extra scope is one word (no spaces or quotes).")
    return {"kind": wanted.kind, "name": _text("name", wanted.name, 100), "client_id": _text("client_id", wanted.client_id, 500),
            "issuer": _issuer(wanted), "scopes": scopes, "domains": _domains(project, wanted, row),
            "create_accounts": bool(wanted.create_accounts), "enabled": bool(wanted.enabled)}


def _audited(row: IdentityProvider) -> dict:
    return {"provider": row.pk, "provider_kind": row.kind, "name": row.name, "client_id": row.client_id, "issuer": row.issuer,
            "domains": row.domains, "enabled": row.enabled, "create_accounts": row.create_accounts}


@transaction.atomic
def add(project: Project, wanted: ProviderSettings, *, actor: str, request=None) -> IdentityProvider:
    row = IdentityProvider(project=project, **_checked(project, wanted, None))
    row.client_secret = wanted.client_secret.strip()
    row.save()
    AuditEvent.record(project, "identity.provider_added", actor=actor, request=request, **_audited(row))
    return row


@transaction.atomic
def change(row: IdentityProvider, wanted: ProviderSettings, *, actor: str, request=None) -> IdentityProvider:
    values = _checked(row.project, wanted, row)
    if values["kind"] != row.kind:
        raise ProviderRefused("kind", "A provider's kind cannot change: add a new provider instead.")
    for name, value in values.items():
        setattr(row, name, value)
    if (wanted.client_secret or "").strip():
        row.client_secret = wanted.client_secret.strip()
    row.save()
    AuditEvent.record(row.project, "identity.provider_changed", actor=actor, request=request,
                      secret_replaced=bool((wanted.client_secret or "").strip()), **_audited(row))
    return row


def remove(row: IdentityProvider, *, actor: str, request=None) -> None:
    """Delete the provider and every identity it linked (their end users stay)."""
    detail = {**_audited(row), "identities": row.identities.count()}
    row.delete()
    AuditEvent.record(row.project, "identity.provider_removed", actor=actor, request=request, **detail)


def unlink(identity: UpstreamIdentity, *, actor: str, request=None) -> None:
    project = identity.provider.project
    identity.delete()
    AuditEvent.record(project, "identity.unlinked", actor=actor, request=request, provider=identity.provider_id,
                      provider_name=identity.provider.name, subject=identity.user.subject,
                      upstream_subject=identity.subject)


def settings_of(row: IdentityProvider) -> ProviderSettings:
    return ProviderSettings(kind=row.kind, name=row.name, client_id=row.client_id, issuer=row.issuer,
                            scopes=list(row.scopes), domains=list(row.domains), create_accounts=row.create_accounts,
                            enabled=row.enabled)
