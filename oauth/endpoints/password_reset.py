"""Password reset by email for hosted end users: "Forgot password?" on the sign-in page.

`{issuer}/oauth/forgot-password` takes an email and always answers the same page: whether or not an
account has that address, the request does the same work (two rate-limit counts, `reset:ip` and
`reset:account`, and one queued Celery task) and the worker alone finds out. The link,
`{issuer}/oauth/reset-password?token=…` (one hour, once, this project only), asks for a new
password; setting it spends the link, ends every session of the person (their session auth hash
changes) and revokes their grants: whoever knew the old password keeps nothing.
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from infra.ratelimit import RateLimited
from oauth.endpoints.authorize import ErrorPage, branding, error_page, page_url, pending_for_browser
from oauth.tokens import revoke
from projects import accounts, tasks
from projects.models import AccountToken, Project

SENT = "If {email} has an account here, we sent it a link to choose a new password. It works for one hour."
THROTTLED = "Too many attempts. Wait a few minutes and try again."
EXPIRED = "This link has expired or was already used. Ask for a new one from the sign-in page."


def _hosted(request: HttpRequest) -> None:
    """Passwords exist here only with hosted sign-in and its email form on."""
    if request.project.login_mode != Project.LoginMode.HOSTED or not request.project.email_signin_enabled:
        raise ErrorPage("This project does not sign people in with a password here.", status=404, title="Not found")


def _signin_url(request: HttpRequest) -> str:
    """Back to the sign-in page of the authorization this browser started, if there is one."""
    try:
        return page_url(pending_for_browser(request, request.GET.get("request")), "signin")
    except ErrorPage:
        return ""


@never_cache
@require_http_methods(["GET", "POST"])
def forgot_password(request: HttpRequest) -> HttpResponse:
    try:
        _hosted(request)
    except ErrorPage as page:
        return error_page(request, page)
    context = {"signin_url": _signin_url(request), "action": request.get_full_path()}
    if request.method == "GET":
        return _page(request, "oauth/forgot_password.html", **context)
    email = request.POST.get("email", "").strip().lower()[:254]
    try:
        tasks.ask_for_password_reset(request, request.project, email, request.issuer)
    except RateLimited as refused:
        return _page(request, "oauth/forgot_password.html", status=429, headers=refused.headers, email=email,
                     error=THROTTLED, **context)
    return _page(request, "oauth/forgot_password.html", notice=SENT.format(email=email), **context)


@never_cache
@require_http_methods(["GET", "POST"])
def reset_password(request: HttpRequest) -> HttpResponse:
    try:
        _hosted(request)
    except ErrorPage as page:
        return error_page(request, page)
    value = request.GET.get("token", "")
    token = AccountToken.find(AccountToken.Purpose.RESET, value, request.project)
    if token is None:
        return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))
    if request.method == "GET":
        return _page(request, "oauth/reset_password.html", email=token.user.email, action=request.get_full_path())
    password = request.POST.get("password", "")
    try:
        validate_password(password, token.user)
    except ValidationError as exc:
        return _page(request, "oauth/reset_password.html", status=400, email=token.user.email,
                     action=request.get_full_path(), error=" ".join(exc.messages))
    with transaction.atomic():
        token = AccountToken.spend(AccountToken.Purpose.RESET, value, request.project)
        if token is None:  # spent by a parallel request meanwhile
            return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))
        accounts.reset_password(token, password, request)
        revoke.end_user_grants(request.project, token.user)
    return _page(request, "oauth/password_changed.html", email=token.user.email)


def _page(request: HttpRequest, template: str, *, status: int = 200, headers: dict | None = None,
          **context) -> HttpResponse:
    response = render(request, template, {**branding(request.project), **context}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
