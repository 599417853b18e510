"""Project tasks: signing-key rotation on each project's schedule (Celery beat); account emails."""

import hashlib

from celery import shared_task

from infra import ratelimit
from infra.security import client_ip
from projects import accounts
from projects.models import AccountToken, Project, User


@shared_task
def rotate_due_signing_keys() -> dict[str, str]:
    """Rotate every key older than its project's `key_rotation_days`; returns {slug: new kid}."""
    return {project.slug: project.rotate_signing_key(actor="schedule").kid
            for project in Project.objects.due_for_key_rotation()}


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_verification(user_id: int, base_url: str, authorization_request: str = "") -> None:
    """Email a verification link (projects.accounts); SMTP errors are retried with backoff."""
    user = User.objects.filter(pk=user_id).select_related("project").first()
    if user is not None and user.email_verified_at is None:
        accounts.send_link(user, AccountToken.Purpose.VERIFY, base_url, authorization_request)


def ask_for_password_reset(request, project: Project | None, email: str, base_url: str) -> None:
    """The "Forgot password?" form of end users of `project` or of operators (None), one answer
    whether or not someone has the address: the request is counted per client address and per
    address (`reset:ip`/`reset:account`, operators `operator-reset:…`), then `send_password_reset`
    is queued and the worker alone looks the address up. Raises RateLimited (nothing queued) when
    a count is full."""
    kind, account = ("reset", f"{project.pk}:{email}") if project is not None else ("operator-reset", f"operator:{email}")
    ratelimit.hit(ratelimit.check(f"{kind}:ip", client_ip(request) or "unknown", project),
                  ratelimit.check(f"{kind}:account", hashlib.sha256(account.encode()).hexdigest(), project))
    if email and "\x00" not in email:  # known or not, this is all the request does
        send_password_reset.delay(project.pk if project is not None else None, email, base_url)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_password_reset(project_id: int | None, email: str, base_url: str) -> None:
    """Email a reset link if `email` is an account of the project (None: an operator's); else nothing."""
    project = Project.objects.filter(pk=project_id).first() if project_id is not None else None
    if project_id is None or project is not None:
        accounts.send_password_reset(project, email, base_url)


@shared_task
def reap_account_tokens() -> int:
    """Email links a day past their expiry are deleted (spent or not); returns how many."""
    return AccountToken.objects.expired().delete()[0]
