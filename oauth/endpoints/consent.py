"""The consent page (RFC 6749 §4.1.1 "the authorization server ... obtains an authorization decision").

Shows who asks (client name, the redirect URI's host — or, for a native app's private-use scheme,
the app that handles its links — a "verified domain" mark for CIMD clients)
for what (scopes with the project's descriptions, the resource), under the project's brand, with
`Allow` and `Deny`. A decision is remembered per (end user, client, scopes); first-party clients
never see this page. It cannot be framed (global X-Frame-Options DENY and CSP frame-ancestors
'none') and its form is CSRF-protected.
"""

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from activity import record as activity
from infra.security import CSP
from oauth.clients import redirects
from oauth.endpoints.authorize import (
    AuthorizationRequest,
    ErrorPage,
    branding,
    deny,
    error_page,
    finish,
    must_verify_email,
    needs_consent,
    page_url,
    pending_for_browser,
    redirect_browser,
)
from oauth.endpoints.endusers import current_end_user
from oauth.endpoints.signin import client_name
from oauth.errors import OAuthError
from oauth.models import Application, Consent
from projects.models import AuditEvent, Project
from webhooks import emit

EXPIRED = "This link has expired or was already used. Go back to the application and try again."


@never_cache
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    try:
        pending = pending_for_browser(request, request.GET.get("request"))
        if not _identify(request, pending):
            return redirect_browser(pending, page_url(pending, "signin"))
        if must_verify_email(request.project, pending.user):
            return redirect_browser(pending, page_url(pending, "check-email"))
        if request.method == "POST":
            return _decide(request, pending, request.POST.get("decision"))
        if not needs_consent(pending.user, pending.client, pending.params):
            return redirect_browser(pending, finish(request, pending))
        return _page(request, pending)
    except ErrorPage as page:
        return error_page(request, page)
    except OAuthError:
        return error_page(request, ErrorPage(EXPIRED, title="This link has expired"))


def _identify(request: HttpRequest, pending: AuthorizationRequest) -> bool:
    """Is the end user known? Vouched for by the operator (handoff), or signed in here (hosted)."""
    if request.project.login_mode == Project.LoginMode.HANDOFF:
        return pending.user is not None
    user = current_end_user(request)
    if user is None or (pending.user is not None and pending.user.pk != user.pk):
        return False
    pending.user = user
    return True


def _decide(request: HttpRequest, pending: AuthorizationRequest, decision: str | None) -> HttpResponse:
    actor = pending.user.subject
    if decision == "allow":
        first = not Consent.objects.filter(user=pending.user, client=pending.client).exists()
        Consent.remember(pending.user, pending.client, pending.scopes)
        url = finish(request, pending)
        AuditEvent.record(request.project, "consent.allowed", actor=actor, client_id=pending.client.client_id,
                          request=request, scopes=pending.scopes)
        activity.record(request.project, activity.CONSENT, "allowed", client_id=pending.client.client_id)
        if first:  # a grant is the end user's first "Allow" for the client
            emit(request.project, "grant.created", {"client_id": pending.client.client_id, "subject": actor,
                                                    "scopes": pending.scopes})
        return redirect_browser(pending, url)
    if decision == "deny":
        url = deny(pending)
        AuditEvent.record(request.project, "consent.denied", actor=actor, client_id=pending.client.client_id,
                          request=request)
        activity.record(request.project, activity.CONSENT, "denied", client_id=pending.client.client_id)
        return redirect_browser(pending, url)
    raise ErrorPage("Choose Allow or Deny.")


def _page(request: HttpRequest, pending: AuthorizationRequest) -> HttpResponse:
    client = pending.client
    descriptions = request.project.scope_descriptions
    context = {
        **branding(request.project),
        "pending": pending,
        "client_name": client_name(client),
        "redirect_host": redirect_host(pending.redirect_uri),
        "redirect_app": redirect_app(pending.redirect_uri),
        "verified_domain": verified_domain(client),
        "scopes": [{"name": s, "description": descriptions.get(s, "")} for s in pending.scopes],
        "resource": pending.resource,
        "user": pending.user,
        "action": page_url(pending, "consent"),
        "user_code": pending.params.get("user_code"),  # RFC 8628 §5.4: confirmed against the device's screen
    }
    response = render(request, "oauth/consent.html", context)
    scheme = urlsplit(pending.redirect_uri).scheme
    if scheme not in ("http", "https"):
        # CSP form-action also governs the redirect after submit: let a native app's scheme through.
        response["Content-Security-Policy"] = CSP.replace("form-action 'self' http: https:",
                                                          f"form-action 'self' http: https: {scheme}:")
    return response


def redirect_host(redirect_uri: str) -> str:
    """What the end user should check: where the browser goes next. For a native app, its scheme
    (`cursor://`): the "host" of a private-use URI proves nothing (`evil://claude.ai/cb`)."""
    return redirect_app(redirect_uri) or urlsplit(redirect_uri).hostname or ""


def redirect_app(redirect_uri: str) -> str | None:
    """A private-use scheme (RFC 8252 §7.1) names no host: the person is told which links' app gets
    the code, as the scheme is written (`cursor://`, `com.example.app:`); None for http(s)."""
    scheme = redirects.private_use_scheme(redirect_uri)
    if scheme is None:
        return None
    return f"{scheme}://" if redirect_uri[len(scheme) + 1:].startswith("//") else f"{scheme}:"


def verified_domain(client: Application) -> str | None:
    """A CIMD client's client_id is an https URL we fetched: its host is proven, so show it."""
    if client.registration_path != Application.Path.CIMD:
        return None
    return urlsplit(client.client_id).hostname
