"""What operators do to a project, shared by the dashboard views and the management API.

Each action is scoped to the project it is given, runs in one transaction, and leaves an
AuditEvent naming the operator. Tokens end through `oauth.tokens.revoke`, the one revocation path.
"""

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from activity import record as activity
from oauth import grants
from oauth.models import Application, Consent
from oauth.tokens import revoke
from projects import secrets as tokens
from projects.models import AuditEvent, Project, ProjectMember, SigningKey, User
from webhooks import emit


def actor_of(request) -> str:
    return getattr(request.user, "email", "") or "operator"


def clients_of(project: Project) -> QuerySet:
    """The project's clients with their count of live (unexpired) access tokens."""
    live = Q(accesstoken__expires__gt=timezone.now())
    return Application.objects.filter(project=project).annotate(
        live_tokens=Count("accesstoken", filter=live, distinct=True)
    )


@transaction.atomic
def revoke_client_tokens(project: Project, client: Application, request) -> int:
    """Revoke every token and pending code of one client; returns how many tokens were live."""
    assert client.project_id == project.pk
    live = revoke.client_tokens(client)
    AuditEvent.record(project, "token.revoked", actor=actor_of(request), client_id=client.client_id,
                      request=request, reason="operator revoked all tokens of the client", count=live)
    activity.record(project, activity.REVOKED, "client", client_id=client.client_id)
    return live


@transaction.atomic
def set_client_disabled(project: Project, client: Application, disabled: bool, request) -> None:
    assert client.project_id == project.pk
    client.disabled_at = timezone.now() if disabled else None
    client.save(update_fields=["disabled_at", "updated"])
    if disabled:
        revoke_client_tokens(project, client, request)
    AuditEvent.record(project, "client.disabled" if disabled else "client.enabled", actor=actor_of(request),
                      client_id=client.client_id, request=request)


@transaction.atomic
def delete_client(project: Project, client: Application, request) -> None:
    """Delete the client and (by cascade) its tokens; it gets `invalid_client` and re-registers."""
    assert client.project_id == project.pk
    client_id, name = client.client_id, client.name
    emit(project, "client.deleted", {"client_id": client_id, "client_name": name,
                                     "registration_path": client.registration_path})
    client.delete()
    AuditEvent.record(project, "client.deleted", actor=actor_of(request), client_id=client_id,
                      request=request, name=name)


@transaction.atomic
def create_client(project: Project, request, *, name: str, redirect_uris: list[str], client_type: str,
                  grant_types: list[str], first_party: bool = False) -> tuple[Application, str | None]:
    """A pre-registered client; a confidential one gets a secret, returned once and stored hashed."""
    confidential = client_type == Application.CLIENT_CONFIDENTIAL
    secret = tokens.generate(tokens.CLIENT_SECRET_PREFIX) if confidential else ""
    metadata = {
        "client_name": name, "redirect_uris": redirect_uris, "grant_types": grant_types,
        "response_types": ["code"] if "authorization_code" in grant_types else [],
        "token_endpoint_auth_method": "client_secret_basic" if confidential else "none",
    }
    client = Application.objects.create(
        project=project, name=name, redirect_uris=" ".join(redirect_uris), client_type=client_type,
        authorization_grant_type=grants.toolkit_grant_of(grant_types), client_secret=secret, hash_client_secret=True,
        registration_path=Application.Path.DASHBOARD, metadata=metadata, first_party=first_party,
        skip_authorization=first_party, user=request.user if request.user.is_authenticated else None,
    )
    AuditEvent.record(project, "client.registered", actor=actor_of(request), client_id=client.client_id,
                      request=request, registration_path="dashboard", name=name)
    activity.record(project, activity.REGISTERED, "dashboard", client_id=client.client_id)
    emit(project, "client.registered", {"client_id": client.client_id, "client_name": name,
                                        "registration_path": client.registration_path})
    return client, (secret or None)


def end_users_of(project: Project) -> QuerySet:
    now = timezone.now()
    return User.objects.filter(project=project).annotate(
        live_tokens=Count("oauth_accesstoken", filter=Q(oauth_accesstoken__expires__gt=now), distinct=True),
        clients=Count("oauth_accesstoken__application", distinct=True),
    )


@transaction.atomic
def revoke_end_user(project: Project, person: User, request) -> int:
    """Revoke everything a person granted in this project: tokens, codes and remembered consent."""
    assert person.project_id == project.pk
    live = revoke.end_user_grants(project, person)
    Consent.objects.filter(user=person, client__project=project).delete()
    AuditEvent.record(project, "grants.revoked", actor=actor_of(request), request=request,
                      subject=person.subject, count=live)
    activity.record(project, activity.REVOKED, "end_user")
    return live


@transaction.atomic
def update_settings(project: Project, changed: list[str], request=None, *, actor: str = "") -> None:
    SigningKey.ensure(project)  # e.g. the RS256 key: made before JWKS can be rendered for the new settings
    project.save()
    AuditEvent.record(project, "settings.changed", actor=actor or actor_of(request), request=request,
                      changed=changed)
    emit(project, "settings.changed", {"changed": changed})
    if "require_mfa" in changed:
        AuditEvent.record(project, "project.mfa_required" if project.require_mfa else "project.mfa_not_required",
                          actor=actor or actor_of(request), request=request)


@transaction.atomic
def add_member(project: Project, user: User, role: str, request) -> ProjectMember:
    member, created = ProjectMember.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created and member.role != role:
        member.role = role
        member.save(update_fields=["role"])
    AuditEvent.record(project, "member.added" if created else "member.role_changed", actor=actor_of(request),
                      request=request, member=user.email, role=role)
    emit(project, "member.changed", {"member": user.email, "role": role, "change": "added" if created else "role_changed"})
    return member


class LastOwner(Exception):
    """A project keeps at least one owner."""


@transaction.atomic
def change_role(project: Project, member: ProjectMember, role: str | None, request) -> None:
    """Change a member's role, or remove them (role None); never leaves the project without an owner."""
    assert member.project_id == project.pk
    owners = ProjectMember.objects.select_for_update().filter(project=project, role=ProjectMember.Role.OWNER)
    if member.role == ProjectMember.Role.OWNER and role != ProjectMember.Role.OWNER and owners.count() <= 1:
        raise LastOwner
    email = member.user.email
    if role is None:
        member.delete()
        AuditEvent.record(project, "member.removed", actor=actor_of(request), request=request, member=email)
        emit(project, "member.changed", {"member": email, "role": None, "change": "removed"})
        return
    member.role = role
    member.save(update_fields=["role"])
    AuditEvent.record(project, "member.role_changed", actor=actor_of(request), request=request,
                      member=email, role=role)
    emit(project, "member.changed", {"member": email, "role": role, "change": "role_changed"})
