"""Which end user an upstream identity is: linked by (provider, subject), never by email alone.

1. A linked identity: its end user.
2. Else an end user of the project with the same email, linked now, only when the upstream says the
   email is verified AND the local account's email is verified (`email_verified_at`).
3. Else a new end user, when the provider may create accounts; an upstream-verified email counts as
   verified here.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from identity.models import IdentityProvider, UpstreamIdentity
from identity.providers import Profile
from projects.models import AuditEvent, User


class NoAccount(Exception):
    """Nobody here to sign in. `reason`: `no_account`, `email_taken` or `disabled` (a code for the page)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def end_user_for(provider: IdentityProvider, profile: Profile) -> User:
    identity = UpstreamIdentity.objects.filter(provider=provider, subject=profile.subject).select_related("user").first()
    if identity is not None:
        identity.email, identity.email_verified, identity.last_used_at = \
            profile.email[:254], profile.email_verified, timezone.now()
        identity.save(update_fields=["email", "email_verified", "last_used_at"])
        return _active(identity.user)
    user = _by_verified_email(provider, profile)
    if user is None:
        user = _provision(provider, profile)
    try:
        with transaction.atomic():
            UpstreamIdentity.objects.create(provider=provider, subject=profile.subject, user=user,
                                            email=profile.email[:254], email_verified=profile.email_verified)
    except IntegrityError:  # the same person's first sign-in, twice at once: the other one linked
        return _active(UpstreamIdentity.objects.get(provider=provider, subject=profile.subject).user)
    AuditEvent.record(provider.project, "identity.linked", actor=user.subject, provider=provider.pk,
                      provider_name=provider.name, upstream_subject=profile.subject)
    return _active(user)


def _active(user: User) -> User:
    if not user.is_active:
        raise NoAccount("disabled")
    return user


def _by_verified_email(provider: IdentityProvider, profile: Profile) -> User | None:
    email = profile.email.strip().lower()
    if not email:
        return None
    local = User.objects.filter(project=provider.project, email=email).first()
    if local is None:
        return None
    if profile.email_verified and local.email_verified_at is not None:
        return local
    raise NoAccount("email_taken")  # never linked on an unverified email, on either side


def _provision(provider: IdentityProvider, profile: Profile) -> User:
    if not provider.create_accounts:
        raise NoAccount("no_account")
    email = profile.email.strip().lower()[:254]
    try:
        with transaction.atomic():
            user = User.objects.create_end_user(provider.project, email=email)
    except IntegrityError:  # that email was taken a moment ago
        raise NoAccount("email_taken") from None
    user.name = profile.name[:200]
    user.email_verified_at = timezone.now() if email and profile.email_verified else None
    user.save(update_fields=["name", "email_verified_at"])
    AuditEvent.record(provider.project, "enduser.created", actor=f"identity provider {provider.name}",
                      subject=user.subject, provider=provider.pk)
    return user
