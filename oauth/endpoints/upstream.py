"""Sign-in through an upstream identity provider (docs/identity.md): the hosted sign-in page's
`Continue with {name}` buttons start here, and the provider sends the person back to the project's
one callback, `{issuer}/oauth/upstream/callback`.

The leg itself (state, PKCE, nonce, ID token, profile) is identity.upstream; which end user it is,
identity.accounts. Whatever fails comes back to our sign-in page with words for the person and the
pending authorization request kept; never a 500.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from identity import accounts
from identity import state as states
from identity import upstream as leg
from identity.models import IdentityProvider
from oauth.endpoints.authorize import (
    AuthorizationRequest,
    ErrorPage,
    error_page,
    page_url,
    pending_for_browser,
)
from oauth.endpoints.endusers import bind_request, latest_request
from oauth.endpoints.signin import hosted_request, signed_in
from oauth.errors import logger
from projects.models import AuditEvent

EXPIRED = "This sign-in took too long or was already used. Go back to the application and try again."


@never_cache
@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Send the person to the provider, the round bound to our pending request."""
    try:
        pending = hosted_request(request)
        provider = enabled_provider(request, request.GET.get("provider"))
        try:
            return HttpResponseRedirect(leg.start(provider, authorization_id=pending.pk))
        except leg.UpstreamFailed as failed:
            logger.info("upstream sign-in not started: %s", failed)
            return back_to_signin(pending, failed.code, provider.pk)
    except ErrorPage as page:
        return error_page(request, page)


def enabled_provider(request: HttpRequest, provider_id: str | None) -> IdentityProvider:
    provider = None
    if provider_id and provider_id.isascii() and provider_id.isdigit() and len(provider_id) <= 18:  # a bigint
        provider = IdentityProvider.objects.enabled(request.project).filter(pk=int(provider_id)).first()
    if provider is None:
        raise ErrorPage("This sign-in option is not available.", status=404, title="Not found")
    return provider


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """RFC 6749 §4.1.2: the provider's authorization response."""
    try:
        try:
            outcome = leg.finish(request.project, request.GET)
        except leg.UpstreamFailed as failed:
            return came_back_without(request, failed)
        if outcome.round.tester_id:
            return tested(request, outcome)
        pending = live_request(request, outcome.round.authorization_id)
        try:
            user = accounts.end_user_for(outcome.provider, outcome.profile)
        except accounts.NoAccount as refused:
            logger.info("upstream sign-in refused: %s", refused.reason)
            return returned(request, pending.pk, refused.reason, outcome.provider.pk)
        AuditEvent.record(request.project, "enduser.signed_in", actor=user.subject, request=request,
                          provider=outcome.provider.pk, provider_name=outcome.provider.name)
        bind_request(request, pending.pk)  # the state proved this round: a webview that lost its cookies goes on
        return signed_in(request, pending, user)
    except ErrorPage as page:
        return error_page(request, page)


def came_back_without(request: HttpRequest, failed: leg.UpstreamFailed) -> HttpResponse:
    """The round failed: the operator's test sees why; a person is back on our sign-in page."""
    logger.info("upstream sign-in failed (%s): %s", failed.code, failed)
    kept = failed.round
    if kept is None:
        return returned(request, None, failed.code, None)
    if kept.tester_id:
        return to_dashboard(request, kept, {"ok": False, "code": failed.code})
    return returned(request, kept.authorization_id, failed.code, kept.provider_id)


def live_request(request: HttpRequest, authorization_id: str | None) -> AuthorizationRequest:
    pending = None
    if authorization_id:
        pending = (AuthorizationRequest.objects.live(request.project)
                   .filter(pk=authorization_id, client__disabled_at__isnull=True).select_related("client", "user").first())
    if pending is None:
        raise ErrorPage(EXPIRED, title="This link has expired")
    return pending


def returned(request: HttpRequest, authorization_id: str | None, code: str, provider_id: int | None) -> HttpResponse:
    """Back to our sign-in page with `code` for the message. Without a valid state, the pending
    request this browser started last, if there is one."""
    if not authorization_id:
        authorization_id = latest_request(request)
        pending_for_browser(request, authorization_id)  # or the expired page
    pending = live_request(request, authorization_id)
    bind_request(request, pending.pk)
    return back_to_signin(pending, code, provider_id)


def back_to_signin(pending: AuthorizationRequest, code: str, provider_id: int | None) -> HttpResponse:
    query = {"upstream": code, **({"via": provider_id} if provider_id else {})}
    return HttpResponseRedirect(page_url(pending, "signin") + "&" + urlencode(query))


def tested(request: HttpRequest, outcome: leg.Outcome) -> HttpResponse:
    """An operator's "Test sign-in" (dashboard): show what came back; nobody is signed in or made."""
    profile = outcome.profile
    result = {"ok": True, "subject": profile.subject, "email": profile.email,
              "email_verified": profile.email_verified, "name": profile.name, "claims": profile.claims}
    return to_dashboard(request, outcome.round, result)


def to_dashboard(request: HttpRequest, kept: states.Round, result: dict) -> HttpResponse:
    key = states.keep_test_result(kept, result)
    page = reverse("dashboard:identity_provider_tested", args=[request.project.slug, kept.provider_id])
    return HttpResponseRedirect(f"{settings.PUBLIC_URL}{page}?{urlencode({'result': key})}")
