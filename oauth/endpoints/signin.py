"""Hosted sign-in for a project's end users (API.md "Authorization", login mode `hosted`).

Email and password (Django's password hasher), optional sign-up per project, failures throttled
per account and per IP (infra.ratelimit), with the same answer whether or not the account exists.
A signed-in end user is remembered in the session under their project's key only (oauth.endpoints.endusers),
never as a Django-auth login.
"""

import hashlib

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from activity import record as activity
from infra import observe, ratelimit
from infra.ratelimit import RateLimited
from infra.security import client_ip
from oauth.endpoints import verification
from oauth.endpoints.authorize import (
    AuthorizationRequest,
    ErrorPage,
    branding,
    continue_url,
    error_page,
    page_url,
    pending_for_browser,
    redirect_browser,
)
from oauth.endpoints.endusers import sign_in
from oauth.errors import OAuthError
from projects.models import Project, User

BAD_CREDENTIALS = "That email and password do not match an account."
THROTTLED = "Too many attempts. Wait a few minutes and try again."


def signin_checks(request: HttpRequest, email: str) -> list:
    """Failed sign-ins per account (project + email, known or not) and per address (all projects)."""
    account = hashlib.sha256(f"{request.project.pk}:{email}".encode()).hexdigest()
    return [ratelimit.check("signin:account", account, request.project),
            ratelimit.check("signin:ip", client_ip(request) or "unknown", request.project)]


def authenticate_end_user(project: Project, email: str, password: str) -> User | None:
    """The active end user of `project` with this email and password, else None (same work either way)."""
    usable = email and "\x00" not in email
    user = User.objects.filter(project=project, email=email, is_active=True).first() if usable else None
    if user is None:
        User().set_password(password)  # no account enumeration by timing
        return None
    return user if user.check_password(password) else None


def _form(request: HttpRequest, pending: AuthorizationRequest, template: str, *, error: str = "",
          email: str = "", status: int = 200, headers: dict | None = None) -> HttpResponse:
    context = {
        **branding(request.project), "pending": pending, "client_name": client_name(pending.client),
        "error": error, "email": email, "signup_enabled": request.project.signup_enabled,
        "signin_url": page_url(pending, "signin"), "signup_url": page_url(pending, "signup"),
        "forgot_url": page_url(pending, "forgot-password"),
    }
    response = render(request, template, context, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _throttled(request: HttpRequest, pending: AuthorizationRequest, template: str, email: str,
               refused: RateLimited) -> HttpResponse:
    observe.refused("rate_limited")  # counted with the OAuth refusals (a 429), by the request's end
    return _form(request, pending, template, error=THROTTLED, email=email, status=429, headers=refused.headers)


def client_name(client) -> str:
    return client.name or (client.metadata or {}).get("client_name") or client.client_id


def _signed_in(request: HttpRequest, pending: AuthorizationRequest, user: User) -> HttpResponse:
    sign_in(request, user)
    pending.user = user
    pending.save(update_fields=["user"])
    try:
        return redirect_browser(pending, continue_url(request, pending))
    except OAuthError:
        raise ErrorPage("This link has expired or was already used. Go back to the application and try again.") from None


def _hosted_request(request: HttpRequest) -> AuthorizationRequest:
    if request.project.login_mode != Project.LoginMode.HOSTED:
        raise ErrorPage("This project signs people in on its own site.", status=404, title="Not found")
    return pending_for_browser(request, request.GET.get("request"))


@never_cache
@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    try:
        pending = _hosted_request(request)
        if request.method == "GET":
            return _form(request, pending, "oauth/signin.html")
        email = request.POST.get("email", "").strip().lower()[:254]
        try:  # every attempt counts until its password proved right: parallel guesses cannot outrun the count
            attempt = ratelimit.hit(*signin_checks(request, email))
        except RateLimited as refused:
            return _throttled(request, pending, "oauth/signin.html", email, refused)
        user = authenticate_end_user(request.project, email, request.POST.get("password", ""))
        if user is None:
            activity.record(request.project, activity.SIGNIN, "failed", client_id=pending.client.client_id)
            return _form(request, pending, "oauth/signin.html", error=BAD_CREDENTIALS, email=email, status=400)
        activity.record(request.project, activity.SIGNIN, "ok", client_id=pending.client.client_id)
        attempt.forgive()
        return _signed_in(request, pending, user)
    except ErrorPage as page:
        return error_page(request, page)


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    try:
        pending = _hosted_request(request)
        if not request.project.signup_enabled:
            raise ErrorPage("This project does not allow new accounts.", status=404, title="Not found")
        if request.method == "GET":
            return _form(request, pending, "oauth/signup.html")
        email = request.POST.get("email", "").strip().lower()[:254]
        try:  # every sign-up attempt counts: accounts are cheap to make, so addresses are limited
            ratelimit.hit(ratelimit.check("signin:ip", client_ip(request) or "unknown", request.project))
        except RateLimited as refused:
            return _throttled(request, pending, "oauth/signup.html", email, refused)
        user, error = create_account(request.project, email, request.POST.get("password", ""))
        if user is None:
            return _form(request, pending, "oauth/signup.html", error=error, email=email, status=400)
        verification.send_verification(request, user, pending)
        return _signed_in(request, pending, user)
    except ErrorPage as page:
        return error_page(request, page)


def create_account(project: Project, email: str, password: str) -> tuple[User | None, str]:
    """A new end user of `project`, or None and the reason to show."""
    try:
        User._meta.get_field("email").run_validators(email)
        if not email or "\x00" in email:
            raise ValidationError("Enter an email address.")
        validate_password(password)
    except ValidationError as exc:
        return None, " ".join(exc.messages)
    try:
        with transaction.atomic():
            if User.objects.filter(project=project, email=email).exists():
                raise IntegrityError("taken")
            return User.objects.create_end_user(project, email, password), ""
    except IntegrityError:
        return None, "An account with this email already exists. Sign in instead."
