"""Links sent by email to people: verify an address (end users), choose a new password (end users
and operators).

Each link is an `AccountToken` (single use, expiring, kept as a keyed digest). Requests never talk
to SMTP: they queue a Celery task (projects.tasks), which makes the link and sends it through
Django's email framework (EMAIL_URL; without it, files in var/mail). A reset request queues the
same task whether or not the address has an account; the worker finds out, so the answer and its
timing say nothing about who has one.
"""

from email.utils import formataddr, parseaddr
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from infra import ratelimit
from infra.localcache import now_and_at_commit

from . import signals
from .models import AccountToken, AuditEvent, Project, User

# Where each link lands, under the project's issuer (end users) or PUBLIC_URL (operators).
PAGES = {
    (AccountToken.Purpose.VERIFY, False): "oauth/verify-email",
    (AccountToken.Purpose.RESET, False): "oauth/reset-password",
    (AccountToken.Purpose.RESET, True): "reset-password",
}
SUBJECTS = {AccountToken.Purpose.VERIFY: "Confirm your email address for {brand}",
            AccountToken.Purpose.RESET: "Reset your {brand} password"}


def link_url(base_url: str, purpose: str, operator: bool, value: str) -> str:
    return f"{base_url}/{PAGES[(purpose, operator)]}?{urlencode({'token': value})}"


def sender(brand: str) -> str:
    """EMAIL_FROM's address, named after the project whose link it carries."""
    name, address = parseaddr(settings.EMAIL_FROM)
    return formataddr((brand or name, address))


def send_link(user: User, purpose: str, base_url: str, authorization_request: str = "") -> None:
    """Make a new link for `user` and mail it to their address (runs in a Celery worker)."""
    if not user.email or not user.is_active:
        return
    project = user.project
    brand = " ".join((project.brand_name if project else "mcpauth").split())  # one line: it is in headers
    value = AccountToken.issue(user, purpose, authorization_request)
    context = {"brand": brand, "url": link_url(base_url, purpose, project is None, value),
               "hours": int(AccountToken.LIFETIMES[purpose].total_seconds() // 3600), "email": user.email}
    body = render_to_string(f"projects/email/{purpose}.txt", context)
    EmailMessage(SUBJECTS[purpose].format(brand=brand), body, sender(brand), [user.email]).send()


def resend_check(project: Project, user: User) -> tuple:
    """Verification links sent again (by the person or the operator), per person: `verify:account`."""
    return ratelimit.check("verify:account", f"{project.pk}:{user.pk}", project)


def send_password_reset(project: Project | None, email: str, base_url: str) -> None:
    """A reset link to the active person of `project` (None: an operator) with this email, if any."""
    user = User.objects.filter(project=project, email=email, is_active=True).exclude(email="").first()
    if user is not None and user.has_usable_password():
        send_link(user, AccountToken.Purpose.RESET, base_url)


def mark_verified(user: User, actor: str = "") -> None:
    """`user` proved they read mail at their address (or the operator vouched for it)."""
    _verified(user)
    AuditEvent.record(user.project, "end_user.email_verified", actor=actor or user.subject, email=user.email)


def _verified(user: User) -> None:
    user.email_verified_at = timezone.now()
    User.objects.filter(pk=user.pk).update(email_verified_at=user.email_verified_at)
    changed(user)


def changed(user: User) -> None:
    """Something a token may say about `user` (their email, its verification) changed: every place
    that keeps an answer about them forgets it (receivers of `person_changed`)."""
    now_and_at_commit(lambda: signals.person_changed.send(sender=User, user=user))


@transaction.atomic
def reset_password(token: AccountToken, password: str, request=None) -> None:
    """Set the new password of the link's person; the caller ends their sessions and grants."""
    user = token.user
    user.set_password(password)
    user.save(update_fields=["password"])
    if user.email_verified_at is None and user.project_id is not None:
        # The link reached them at this address: that proves it as a verification link would.
        _verified(user)
    AuditEvent.record(user.project, "operator.password_reset" if user.is_operator else "end_user.password_reset",
                      actor=user.email, request=request)
