"""Device authorization endpoint and verification page (RFC 8628 §3.1–§3.3), per project.

`POST {issuer}/oauth/device_authorization` is oauthlib's `DeviceAuthorizationEndpoint` (client
identification and authentication, the response's shape) answering for the project of the
request, followed by our checks: the client registered the grant and the project offers it,
scopes narrowed as at the authorization endpoint, one `resource` (RFC 8707). The codes are
kept as digests (`oauth.grants.device_code`).

`{issuer}/device` is where the person types the user code (or arrives with it, from
`verification_uri_complete`). A code found in this project starts an `AuthorizationRequest`
that goes through the same hosted sign-in, operator handoff and consent pages as
`/oauth/authorize`; the consent page shows the code to be checked against the device's screen,
and its decision is recorded on the device grant (`oauth.endpoints.authorize.finish` / `deny`).
Wrong codes are throttled per client address and per code (`infra.ratelimit`).
"""

import functools
import json
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2 import DeviceApplicationServer

from infra import ratelimit
from infra.observe import refused
from infra.security import client_ip
from oauth.backend import TenantOAuthLibCore, bound, django_request, issuer_of, project_of, refuse_nul_bytes
from oauth.clients import auth as client_auth
from oauth.endpoints.authorize import ErrorPage, branding, error_page, granted_scopes, one_resource, proceed
from oauth.endpoints.decorator import oauth_endpoint
from oauth.errors import OAuthError, UnauthorizedClient
from oauth.grants import device_code as device_grant
from oauth.models import DeviceGrant
from oauth.tokens import issue as tokens

# RFC 8628 §3.2, in this order; oauthlib adds a `scope` of its own, which the RFC does not define.
RESPONSE_FIELDS = ("device_code", "user_code", "verification_uri", "verification_uri_complete", "expires_in",
                   "interval")
NOT_FOUND = "That code is not valid here, or it has expired. Check the code on your device, or start again there."
THROTTLED = "Too many attempts. Wait a few minutes and try again."


# --- POST {issuer}/oauth/device_authorization ---------------------------------------------------
class DeviceAuthorizationChecks(device_grant.DeviceCode):
    """oauthlib's §3.1 checks (duplicate parameters, client, its authentication, scope), then ours."""

    def validate_device_authorization_request(self, request) -> None:
        if not request.client_id:  # oauthlib wants it in the body; Basic or a client assertion names it too
            method = client_auth.presented_method(request)
            request.client_id = method.claimed_client_id(request) if method is not None else None
        super().validate_device_authorization_request(request)
        require_device_grant(request)
        request.resource = one_resource(project_of(request), tokens.requested_resources(request))
        django_request(request).device_authorization = request  # read back by the view to store the grant

    def validate_scopes(self, request) -> None:
        """As at the authorization endpoint: unknown scopes refused, those not allowed dropped."""
        request.scopes = granted_scopes(project_of(request), request.client, request.scope)


def require_device_grant(request) -> None:
    if not device_grant.enabled(project_of(request)):
        raise UnauthorizedClient("The device authorization grant is not enabled for this project.")
    if not request.client.allows_grant_type(device_grant.GRANT_TYPE):
        raise UnauthorizedClient(f"This client did not register the {device_grant.GRANT_TYPE} grant type.")


class DeviceServer(DeviceApplicationServer):
    """oauthlib's device authorization endpoint; its URIs are those of the issuer being served."""

    def __init__(self, request_validator):
        super().__init__(request_validator, verification_uri="", interval=device_grant.INTERVAL,
                         user_code_generator=device_grant.generate_user_code)
        self.device_code_grant = DeviceAuthorizationChecks(request_validator)

    @property
    def verification_uri(self) -> str:
        return f"{issuer_of()}/device"

    @property
    def expires_in(self) -> int:
        return device_grant.EXPIRES_IN

    def verification_uri_complete(self, user_code: str) -> str:
        return f"{self.verification_uri}?{urlencode({'user_code': user_code})}"


@functools.cache
def _core() -> TenantOAuthLibCore:
    return TenantOAuthLibCore(DeviceServer(oauth2_settings.OAUTH2_VALIDATOR_CLASS()))


@oauth_endpoint(("POST",))
@sensitive_post_parameters("client_secret", "client_assertion")
def device_authorization(request: HttpRequest) -> HttpResponse:
    refuse_nul_bytes(request)
    with bound(request):
        headers, body, status = _core().create_device_authorization_response(request)
    if status != 200:  # oauthlib's error, already JSON
        refused(json.loads(body).get("error", "server_error") if body else "server_error")
        return HttpResponse(body, status=status, content_type="application/json", headers=headers)
    checked = request.device_authorization
    device_grant.store(request.project, checked.client, body, checked.scopes, checked.resource)
    return JsonResponse({name: body[name] for name in RESPONSE_FIELDS})


# --- {issuer}/device ------------------------------------------------------------------------------
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    try:
        if not device_grant.enabled(request.project):
            raise ErrorPage("This service does not sign in devices by code.", status=404, title="Not found")
        typed = request.POST.get("user_code") if request.method == "POST" else request.GET.get("user_code")
        if typed is None:
            return _page(request, result=request.GET.get("result", ""))
        return _start(request, typed)
    except ErrorPage as page:
        return error_page(request, page)
    except OAuthError as exc:  # e.g. handoff without a login page
        return error_page(request, ErrorPage(exc.description))


def _start(request: HttpRequest, typed: str) -> HttpResponse:
    """Find the code's device grant in this project, then sign in and consent as /oauth/authorize does."""
    code = device_grant.normalize_user_code(typed)
    try:
        grant = find(request, code, typed)
    except ratelimit.RateLimited as refused:
        return _page(request, error=THROTTLED, user_code=typed[:20], status=429, headers=refused.headers)
    if grant is None:
        return _page(request, error=NOT_FOUND, user_code=typed[:20], status=404)
    params = {
        "issuer": request.issuer, "redirect_uri": f"{request.issuer}/device", "state": None,
        "scopes": grant.scope.split(), "resource": grant.resource[0] if grant.resource else "", "prompt": [],
        # Shown on the consent page to be checked against the device (§3.3.1); kept on the pending
        # request only (ten minutes), and useless without this browser's session.
        "device_grant": grant.pk, "user_code": device_grant.shown(code),
    }
    return proceed(request, grant.application, params)


def find(request: HttpRequest, code: str | None, typed: str) -> DeviceGrant | None:
    """The pending device grant of this project with user code `code`; every try is counted per
    client address (failures only) and per code (RFC 8628 §5.1: user codes can be guessed)."""
    subject = device_grant.user_code_digest(code or typed[:64])
    address = ratelimit.hit(ratelimit.check("device:ip", client_ip(request) or "unknown", request.project))
    ratelimit.hit(ratelimit.check("device:code", f"{request.project.pk}:{subject}", request.project))
    grant = device_grant.pending_by_user_code(request.project, code) if code else None
    if grant is not None:
        address.forgive()
    return grant


def _page(request: HttpRequest, *, result: str = "", error: str = "", user_code: str = "", status: int = 200,
          headers: dict | None = None) -> HttpResponse:
    context = {**branding(request.project), "result": result, "error": error, "user_code": user_code,
               "action": urlsplit(f"{request.issuer}/device").path}
    response = render(request, "oauth/device.html", context, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
