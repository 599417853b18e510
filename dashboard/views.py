"""Operator dashboard: accounts, the projects an operator belongs to, and a project's overview."""

import hashlib
import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from oauth2_provider.models import get_access_token_model

from infra import ratelimit
from infra.ratelimit import RateLimited
from infra.security import client_ip
from mfa import factors
from projects.models import AuditEvent, Project, SlugTaken, User

from . import activity, security
from .decorators import operator_required, project_view
from .forms import TAKEN, ProjectForm, SignUpForm, TokenForm
from .models import OperatorToken


def _safe_next(request) -> str:
    target = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return "dashboard:home"


THROTTLED = "Too many attempts. Wait a few minutes and try again."


def operator_password_checks(request, email: str) -> list:
    """Failed operator password checks per account (known or not) and per client address."""
    account = hashlib.sha256(f"operator:{email.strip().lower()}".encode()).hexdigest()
    return [ratelimit.check("operator-signin:account", account),
            ratelimit.check("operator-signin:ip", client_ip(request) or "unknown")]


def _page(request, template: str, context: dict, status: int, refused: RateLimited | None = None):
    response = render(request, template, context, status=status)
    for name, value in (refused.headers if refused else {}).items():
        response[name] = value  # Retry-After and the RateLimit fields of a 429
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    error, email, status, refused = "", "", 200, None
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        try:  # every attempt counts until its password proved right (the same for unknown accounts)
            attempt = ratelimit.hit(*operator_password_checks(request, email))
        except RateLimited as exc:
            error, status, refused = THROTTLED, 429, exc
        else:
            user = authenticate(request, email=email, password=request.POST.get("password", ""))
            if user is not None:
                attempt.forgive()
                if factors.has_factor(user):  # not signed in until the second step (dashboard.security)
                    return security.start_second_step(request, user, request.GET.get("next", ""))
                login(request, user)
                return redirect(_safe_next(request))
            error, status = "That email and password do not match an operator account.", 400
    context = {"error": error, "email": email, "signup_enabled": settings.OPERATOR_SIGNUP_ENABLED}
    return _page(request, "dashboard/login.html", context, status, refused)


@never_cache
@require_http_methods(["GET", "POST"])
def signup_view(request):
    if not settings.OPERATOR_SIGNUP_ENABLED:
        raise Http404("sign-up is closed")
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        try:  # every attempt counts: accounts are cheap to make, so addresses are limited
            ratelimit.hit(ratelimit.check("operator-signup:ip", client_ip(request) or "unknown"))
        except RateLimited as refused:
            return _page(request, "dashboard/signup.html", {"form": SignUpForm(), "error": THROTTLED}, 429, refused)
    if request.method == "POST" and form.is_valid():
        user = User.objects.create_operator(form.cleaned_data["email"], form.cleaned_data["password"])
        login(request, user, backend="projects.auth.OperatorBackend")
        AuditEvent.record(None, "operator.signed_up", actor=user.email, request=request)
        messages.success(request, "Welcome to mcpauth. Create your first project to get an issuer.")
        return redirect("dashboard:project_new")
    return render(request, "dashboard/signup.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("dashboard:login")


@operator_required
def home(request):
    projects = Project.objects.visible_to(request.user).order_by("name")
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    for project in projects:
        project.my_role = roles.get(project.pk)
    return render(request, "dashboard/home.html", {"projects": projects})


@never_cache
@operator_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project, secret = Project.objects.create_project(
                owner=request.user, name=data["name"], slug=data["slug"],
                resources=[data["resource"]] if data["resource"] else [],
            )
        except SlugTaken:  # created concurrently, after the form's check
            form.add_error("slug", TAKEN)
            return render(request, "dashboard/project_new.html", {"form": form}, status=400)
        request.role = "owner"
        # The registration secret exists in clear only in this one response.
        return render(request, "dashboard/project_created.html", {"project": project, "secret": secret})
    return render(request, "dashboard/project_new.html", {"form": form}, status=400 if form.errors else 200)


def protected_resource_metadata(project: Project, resource: str) -> dict:
    """RFC 9728 §2: what the MCP server at `resource` serves as its Protected Resource Metadata."""
    return {
        "resource": resource,
        "authorization_servers": [project.issuer],
        "scopes_supported": project.scope_names,
        "bearer_methods_supported": ["header"],
    }


def resource_metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known segment goes between the host and the resource's path."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{path}"


@project_view()
def project_detail(request, project):
    now = timezone.now()
    resources = [
        {
            "url": resource,
            "metadata": json.dumps(protected_resource_metadata(project, resource), indent=2),
            "metadata_url": resource_metadata_url(resource),
            "header": f'WWW-Authenticate: Bearer resource_metadata="{resource_metadata_url(resource)}"',
        }
        for resource in project.resources
    ]
    stats = {
        "clients": project.clients.filter(disabled_at__isnull=True).count(),
        "live_tokens": get_access_token_model().objects.filter(application__project=project, expires__gt=now).count(),
        "end_users": project.end_users.count(),
        "secrets": project.secrets.filter(revoked_at__isnull=True).count(),
    }
    context = {"project": project, "role": request.role, "tab": "overview", "resources": resources,
               "stats": stats, "activity": activity.overview(project, request.GET.get("range"))}
    return render(request, "dashboard/project.html", context)


@never_cache
@operator_required
@require_http_methods(["GET", "POST"])
def account(request):
    """Password change and the operator's API tokens for the management API."""
    password_form = PasswordChangeForm(request.user)
    token_form = TokenForm()
    new_token = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "password":
        try:  # the current password is checked: the operator's sign-in limits apply
            attempt = ratelimit.hit(*operator_password_checks(request, request.user.email))
        except RateLimited as refused:
            tokens = request.user.api_tokens.filter(revoked_at__isnull=True).order_by("-created_at")
            context = {"password_form": password_form, "token_form": token_form, "tokens": tokens,
                       "password_error": THROTTLED}
            return _page(request, "dashboard/account.html", context, 429, refused)
        password_form = PasswordChangeForm(request.user, request.POST)
        if password_form.is_valid():
            attempt.forgive()
            password_form.save()
            update_session_auth_hash(request, password_form.user)
            AuditEvent.record(None, "operator.password_changed", actor=request.user.email, request=request)
            messages.success(request, "Your password was changed.")
            return redirect("dashboard:account")
        if "old_password" not in password_form.errors:
            attempt.forgive()  # the current password was right; only the new one was refused
        status = 400
    elif request.method == "POST" and request.POST.get("action") == "token":
        token_form = TokenForm(request.POST)
        if token_form.is_valid():
            _, new_token = OperatorToken.issue(request.user, token_form.cleaned_data["name"])
            AuditEvent.record(None, "operator.token_created", actor=request.user.email, request=request)
            token_form = TokenForm()
        else:
            status = 400
    tokens = request.user.api_tokens.filter(revoked_at__isnull=True).order_by("-created_at")
    context = {"password_form": password_form, "token_form": token_form, "new_token": new_token, "tokens": tokens,
               "factors": factors.factors_of(request.user)}
    return render(request, "dashboard/account.html", context, status=status)


@operator_required
@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(OperatorToken, pk=pk, user=request.user)
    token.revoke()
    AuditEvent.record(None, "operator.token_revoked", actor=request.user.email, request=request)
    messages.success(request, f"API token “{token.name}” was revoked.")
    return redirect("dashboard:account")

