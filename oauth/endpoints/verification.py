"""Email verification of hosted end users: the "check your email" page and the link it waits for.

A sign-up sends a link (projects.accounts, by Celery). While `Project.require_verified_email` is on,
an end user whose email is not verified stops at `{issuer}/oauth/check-email?request=…`, which keeps
their pending authorization (for up to KEEP_PENDING) and can send the link again (throttled,
`verify:account`). The link, `{issuer}/oauth/verify-email?token=…`, shows a button (mail scanners
open links; only a person's POST spends it) that verifies the address once; in the browser that
started the authorization it then continues where it stopped.
"""

from datetime import timedelta

from django.db.models.functions import Greatest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from infra import ratelimit
from infra.ratelimit import RateLimited
from oauth.endpoints.authorize import (
    AuthorizationRequest,
    ErrorPage,
    branding,
    continue_url,
    error_page,
    must_verify_email,
    page_url,
    pending_for_browser,
    redirect_browser,
)
from oauth.endpoints.endusers import current_end_user, owns_request
from oauth.errors import OAuthError
from projects import accounts, tasks
from projects.models import AccountToken, User

KEEP_PENDING = timedelta(minutes=30)  # how long an authorization waits for its end user's email
SENT = "We sent a new link. It can take a minute to arrive."
THROTTLED = "We sent several links already. Wait a few minutes and try again."
EXPIRED = "This link has expired or was already used."


def send_verification(request: HttpRequest, user: User, pending: AuthorizationRequest | None = None) -> None:
    """Queue a verification email for `user` (never sent on the request); `pending` waits for it."""
    if pending is not None:
        keep(pending)
    tasks.send_verification.delay(user.pk, request.issuer, pending.pk if pending else "")


def keep(pending: AuthorizationRequest) -> None:
    """The authorization waits while the person reads their mail (never less than it had)."""
    AuthorizationRequest.objects.filter(pk=pending.pk).update(
        expires_at=Greatest("expires_at", timezone.now() + KEEP_PENDING))


@never_cache
@require_http_methods(["GET", "POST"])
def check_email(request: HttpRequest) -> HttpResponse:
    try:
        pending = pending_for_browser(request, request.GET.get("request"))
        user = current_end_user(request)
        if user is None or (pending.user is not None and pending.user.pk != user.pk):
            return redirect_browser(pending, page_url(pending, "signin"))
        pending.user = user
        if not must_verify_email(request.project, user):  # verified meanwhile (or no longer required)
            return redirect_browser(pending, continue_url(request, pending))
        keep(pending)
        if request.method == "GET":
            return _page(request, "oauth/check_email.html", pending=pending, user=user)
        try:
            ratelimit.hit(accounts.resend_check(request.project, user))
        except RateLimited as refused:
            return _page(request, "oauth/check_email.html", status=429, headers=refused.headers, pending=pending,
                         user=user, error=THROTTLED)
        send_verification(request, user, pending)
        return _page(request, "oauth/check_email.html", pending=pending, user=user, notice=SENT)
    except ErrorPage as page:
        return error_page(request, page)
    except OAuthError:
        return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))


@never_cache
@require_http_methods(["GET", "POST"])
def verify_email(request: HttpRequest) -> HttpResponse:
    value = request.GET.get("token", "")
    if request.method == "GET":
        if AccountToken.find(AccountToken.Purpose.VERIFY, value, request.project) is None:
            return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))
        return _page(request, "oauth/verify_email.html", action=request.get_full_path())
    token = AccountToken.spend(AccountToken.Purpose.VERIFY, value, request.project)
    if token is None:
        return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))
    accounts.mark_verified(token.user)
    return _continue(request, token)


def _continue(request: HttpRequest, token: AccountToken) -> HttpResponse:
    """Back into the authorization this browser started, if it did and it is still waiting."""
    pending_id = token.authorization_request
    signed_in = current_end_user(request)
    if pending_id and owns_request(request, pending_id) and signed_in is not None and signed_in.pk == token.user.pk:
        try:
            pending = pending_for_browser(request, pending_id)
            pending.user = signed_in
            return redirect_browser(pending, continue_url(request, pending))
        except (ErrorPage, OAuthError):
            pass
    return _page(request, "oauth/verified.html", email=token.user.email)


def _page(request: HttpRequest, template: str, *, status: int = 200, headers: dict | None = None,
          **context) -> HttpResponse:
    response = render(request, template, {**branding(request.project), **context}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
