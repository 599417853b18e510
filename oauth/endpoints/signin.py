"""Hosted sign-in for a project's end users (API.md "Authorization", login mode `hosted`).

Email and password (Django's password hasher), optional sign-up per project, failures throttled
per account and per IP (infra.ratelimit), with the same answer whether or not the account exists.
Above the form, a `Continue with {name}` button per enabled upstream identity provider
(oauth.endpoints.upstream); an email whose domain belongs to a provider is sent there. A project
may turn the email form off (`email_signin_enabled`).
A signed-in end user is remembered in the session under their project's key only (oauth.endpoints.endusers),
never as a Django-auth login.
"""

import hashlib
from urllib.parse import urlencode

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from activity import record as activity
from identity.models import IdentityProvider
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
EMAIL_OFF = "Sign in with one of the options above."
# What the person reads when an upstream sign-in came back without them (oauth.endpoints.upstream).
UPSTREAM_MESSAGES = {
    "cancelled": "You cancelled signing in with {name}. Choose a way to sign in.",
    "failed": "Signing in with {name} did not work. Try again, or choose another way to sign in.",
    "expired": "That sign-in took too long or was already used. Try again.",
    "no_account": "Your {name} account is not linked to an account here, and new accounts are not created "
                  "through {name}. Ask the service's operator for access.",
    "email_taken": "An account with your {name} email address already exists here. Sign in with its password "
                   "first; it can be linked once its email address is verified.",
    "disabled": "This account is disabled.",
}


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
    providers = list(IdentityProvider.objects.enabled(request.project))
    context = {
        **branding(request.project), "pending": pending, "client_name": client_name(pending.client),
        "error": error or upstream_message(request, providers), "email": email,
        "signup_enabled": request.project.signup_enabled and request.project.email_signin_enabled,
        "signin_url": page_url(pending, "signin"), "signup_url": page_url(pending, "signup"),
        "forgot_url": page_url(pending, "forgot-password"),
        "providers": [{"name": p.name, "url": upstream_start_url(pending, p)} for p in providers],
        "email_signin_enabled": request.project.email_signin_enabled,
        "domain_routing": any(p.domains for p in providers),
    }
    response = render(request, template, context, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def upstream_start_url(pending: AuthorizationRequest, provider: IdentityProvider) -> str:
    return page_url(pending, "upstream/start") + "&" + urlencode({"provider": provider.pk})


def upstream_message(request: HttpRequest, providers: list[IdentityProvider]) -> str:
    """The words for `?upstream=CODE&via=PROVIDER` (codes only in the URL, never free text)."""
    message = UPSTREAM_MESSAGES.get(request.GET.get("upstream", ""), "")
    via = request.GET.get("via", "")
    name = next((p.name for p in providers if str(p.pk) == via), "the other provider")
    return message.format(name=name)


def routed(pending: AuthorizationRequest, project: Project, email: str) -> HttpResponse | None:
    """Domain routing: an email of a provider's domain goes to that provider."""
    for provider in IdentityProvider.objects.enabled(project):
        if provider.serves(email):
            return HttpResponseRedirect(upstream_start_url(pending, provider))
    return None


def _throttled(request: HttpRequest, pending: AuthorizationRequest, template: str, email: str,
               refused: RateLimited) -> HttpResponse:
    observe.refused("rate_limited")  # counted with the OAuth refusals (a 429), by the request's end
    return _form(request, pending, template, error=THROTTLED, email=email, status=429, headers=refused.headers)


def client_name(client) -> str:
    return client.name or (client.metadata or {}).get("client_name") or client.client_id


def signed_in(request: HttpRequest, pending: AuthorizationRequest, user: User) -> HttpResponse:
    sign_in(request, user)
    pending.user = user
    pending.save(update_fields=["user"])
    try:
        return redirect_browser(pending, continue_url(request, pending))
    except OAuthError:
        raise ErrorPage("This link has expired or was already used. Go back to the application and try again.") from None


def hosted_request(request: HttpRequest) -> AuthorizationRequest:
    if request.project.login_mode != Project.LoginMode.HOSTED:
        raise ErrorPage("This project signs people in on its own site.", status=404, title="Not found")
    return pending_for_browser(request, request.GET.get("request"))


@never_cache
@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    try:
        pending = hosted_request(request)
        if request.method == "GET":
            return _form(request, pending, "oauth/signin.html")
        email = request.POST.get("email", "").strip().lower()[:254]
        elsewhere = routed(pending, request.project, email)
        if elsewhere is not None:
            return elsewhere
        if not request.project.email_signin_enabled:
            return _form(request, pending, "oauth/signin.html", error=EMAIL_OFF, email=email, status=400)
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
        return signed_in(request, pending, user)
    except ErrorPage as page:
        return error_page(request, page)


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    try:
        pending = hosted_request(request)
        if not (request.project.signup_enabled and request.project.email_signin_enabled):
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
        return signed_in(request, pending, user)
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
