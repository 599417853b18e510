"""Trusting an enterprise identity provider (ID-JAG, `oauth.grants.jwt_bearer`): the one way in and out.

The CLI (`trustissuer`), the dashboard page and the management API all call `trust` and `remove`,
so each accepts exactly the same values and each change is audited. A `jwks_uri` is fetched
through the SSRF-safe wrapper when it is set, so a wrong URL is refused now, in words, rather
than at the first assertion. The project's row is touched so discovery (cached per project
generation) starts, or stops, advertising the jwt-bearer grant at once.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from enterprise.models import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS, TrustedIssuer
from oauth.clients.keys import KeySetError, public_keyset
from oauth.grants import issuer_keys
from oauth.tokens import revoke
from projects.models import AuditEvent, Project


class IssuerRefused(ValueError):
    """A value that cannot be trusted; `field` names it, the message says why in plain words."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass
class IssuerSettings:
    issuer: str
    jwks_uri: str = ""
    jwks: dict | None = None
    client_ids: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    algorithms: list[str] = field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    provision: bool = False
    refresh_tokens: bool = False


def _https_url(name: str, value: str) -> str:
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.fragment or len(value) > 2000:
        raise IssuerRefused(name, f"{name} must be an https URL (without a fragment).")
    return value


def _keys(wanted: IssuerSettings) -> tuple[str, dict | None]:
    if bool(wanted.jwks_uri) == (wanted.jwks is not None):
        raise IssuerRefused("jwks_uri", "Give exactly one of jwks_uri and jwks (an inline JWK Set).")
    if wanted.jwks is not None:
        try:
            return "", public_keyset(wanted.jwks)
        except KeySetError as exc:
            raise IssuerRefused("jwks", f"The JWK Set {exc}.") from None
    uri = _https_url("jwks_uri", wanted.jwks_uri)
    try:
        issuer_keys.fetch(uri)
    except issuer_keys.KeysUnavailable as exc:
        raise IssuerRefused("jwks_uri", f"The jwks_uri could not be used: {exc.reason}.") from None
    return uri, None


def _checked(project: Project, wanted: IssuerSettings) -> dict:
    algorithms = list(dict.fromkeys(wanted.algorithms or DEFAULT_ALGORITHMS))
    if not set(algorithms) <= set(ALLOWED_ALGORITHMS):
        raise IssuerRefused("algorithms", "Algorithms must be asymmetric: " + ", ".join(ALLOWED_ALGORITHMS) + ".")
    unknown = [s for s in wanted.scopes if s not in project.scope_names]
    if unknown:
        raise IssuerRefused("scopes", f"Scope {unknown[0]} is not in the project's scope catalog.")
    # Clients may be named before they exist (a client is registered for the grant only once the
    # project trusts an issuer), so only their shape is checked.
    if any(not isinstance(c, str) or not c.strip() or len(c) > 255 for c in wanted.client_ids):
        raise IssuerRefused("client_ids", "Each client_id must be a non-empty string of at most 255 characters.")
    jwks_uri, jwks = _keys(wanted)
    return {"issuer": _https_url("issuer", wanted.issuer), "jwks_uri": jwks_uri, "jwks": jwks,
            "algorithms": algorithms, "client_ids": list(dict.fromkeys(wanted.client_ids)),
            "scopes": list(dict.fromkeys(wanted.scopes)), "provision": wanted.provision,
            "refresh_tokens": wanted.refresh_tokens}


def _summary(row: TrustedIssuer) -> dict:
    return {"issuer": row.issuer, "jwks_uri": row.jwks_uri, "inline_jwks": row.jwks is not None,
            "client_ids": row.client_ids, "scopes": row.scopes, "algorithms": row.algorithms,
            "provision": row.provision, "refresh_tokens": row.refresh_tokens}


def trust(project: Project, wanted: IssuerSettings, *, actor: str, request=None) -> TrustedIssuer:
    """Trust a new issuer for `project`; IssuerRefused says which value is wrong and why."""
    values = _checked(project, wanted)
    try:
        with transaction.atomic():
            row = TrustedIssuer.objects.create(project=project, created_by=actor[:320], **values)
            AuditEvent.record(project, "enterprise.issuer_trusted", actor=actor, request=request, **_summary(row))
            project.save(update_fields=["updated_at"])  # discovery: a new generation
    except IntegrityError:
        raise IssuerRefused("issuer", "This project already trusts that issuer.") from None
    return row


def remove(row: TrustedIssuer, *, actor: str, request=None) -> None:
    """Stop trusting an issuer: its assertions are refused from now on, the tokens issued from them
    (refreshed or not) are revoked at once, and its identity links go with it."""
    project = row.project
    with transaction.atomic():
        revoked = revoke.issuer_tokens(project, row.issuer)
        AuditEvent.record(project, "enterprise.issuer_removed", actor=actor, request=request, issuer=row.issuer,
                          tokens_revoked=revoked)
        row.delete()
        project.save(update_fields=["updated_at"])
    issuer_keys.forget(row)
