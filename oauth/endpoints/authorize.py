"""The authorization endpoint: RFC 6749 §4.1 code flow, PKCE S256 (RFC 7636), resource indicators
(RFC 8707), and the `iss` authorization response parameter (RFC 9207) on every redirect.

`GET {issuer}/oauth/authorize` is a short list of named checks in the RFC's order. The client and
its redirect URI come first: when either is wrong the browser gets a 400 page and is never sent
anywhere (RFC 6749 §4.1.2.1). Every later error goes back to the client with `error`, `state` and
`iss`. A request that needs the end user (sign-in, operator handoff, consent) is saved as an
`AuthorizationRequest`, bound to this browser, and continued by oauth.endpoints.signin, oauth.endpoints.handoff and
oauth.endpoints.consent through `continue_url` / `finish`.
"""

import contextlib
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import generate_token

from oauth.clients.lookup import ClientRefused, find_client
from oauth.clients.scopes import allowed_scopes
from oauth.endpoints.endusers import authenticated_at, bind_request, current_end_user, owns_request
from oauth.errors import (
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    ServerError,
    UnauthorizedClient,
    logger,
)
from oauth.grants import device_code as device_grant
from oauth.models import Application, AuthorizationRequest, Consent, DeviceGrant
from oauth.tokens import dpop
from projects.models import Project, User

# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters of the unreserved set.
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
ACCENT = re.compile(r"#[0-9a-fA-F]{6}")


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"
    description = "Only response_type=code is supported."


class LoginRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, and nobody is signed in."""

    error = "login_required"
    description = "The end user is not signed in."


class ConsentRequired(OAuthError):
    """OpenID Connect Core §3.1.2.6: prompt=none, and the end user has not consented yet."""

    error = "consent_required"
    description = "The end user has not allowed this client yet."


class ErrorPage(Exception):
    """The request cannot be answered by a redirect (unknown client, unregistered redirect URI).

    `message` speaks to the person in the browser; `reason`, when given, to the developer of the
    app that sent them: what exactly is wrong, in words they can act on (never a secret, a fetched
    body or an internal address).
    """

    def __init__(self, message: str, *, status: int = 400, title: str = "This request cannot be completed",
                 reason: str = ""):
        super().__init__(reason or message)
        self.message, self.status, self.title, self.reason = message, status, title, reason


# --- The endpoint ------------------------------------------------------------------------------------


@never_cache
@require_GET
def authorize(request: HttpRequest) -> HttpResponse:
    try:
        check_characters(request)
        client = check_client(request)
        redirect_uri = check_redirect_uri(request, client)
    except ErrorPage as page:
        return error_page(request, page)
    state = request.GET.get("state")
    try:
        params = {
            "issuer": request.issuer,
            "redirect_uri": redirect_uri,
            "state": single(request, "state"),
            **check_response_type(request, client),
            **require_pkce(request),
            "scopes": check_scope(request, client),
            "resource": check_resource(request),
            "prompt": check_prompt(request),
            "nonce": check_nonce(request),
            "max_age": check_max_age(request),
            "dpop_jkt": dpop.check_jkt_parameter(request.project, single(request, "dpop_jkt")),
        }
        return proceed(request, client, params)
    except OAuthError as exc:
        logger.info("authorize %s: %s", exc.error, exc.reason or exc.description)
        return redirect_to_client(redirect_uri, {"error": exc.error, "error_description": exc.description,
                                                 "state": state}, request.issuer)


def single(request: HttpRequest, name: str) -> str | None:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once."""
    values = request.GET.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"The {name} parameter is repeated.")
    return values[0] if values else None


def check_characters(request: HttpRequest) -> None:
    """A NUL byte fits no parameter (and PostgreSQL refuses it): nothing in such a request is trusted."""
    if any("\x00" in value for _, values in request.GET.lists() for value in values):
        raise ErrorPage("The request is malformed.", reason="a parameter contains a NUL byte")


NOT_REGISTERED = "The application that sent you here is not registered with this service."
UNREGISTERED_REDIRECT = "The application asked to send you to an address it has not registered."


def check_client(request: HttpRequest) -> Application:
    """RFC 6749 §4.1.2.1: a client we cannot identify gets a page, before anything else happens."""
    values = request.GET.getlist("client_id")
    if len(values) != 1:
        raise ErrorPage(NOT_REGISTERED, reason="client_id is repeated" if values else "client_id is missing")
    try:
        return find_client(request.project, values[0], request)
    except ClientRefused as exc:
        raise ErrorPage(NOT_REGISTERED, reason=exc.reason) from None


def check_redirect_uri(request: HttpRequest, client: Application) -> str:
    """Simple string comparison with a registered URI; only a loopback port may differ
    (`Application.redirect_uri_allowed`, RFC 8252 §7.3), checked before any sign-in."""
    values = request.GET.getlist("redirect_uri")
    registered = client.redirect_uris.split()
    if not values and len(registered) == 1:
        return registered[0]  # RFC 6749 §3.1.2.3: optional when exactly one is registered
    if len(values) == 1 and client.redirect_uri_allowed(values[0]):
        return values[0]
    listed = ", ".join(uri[:200] for uri in registered) or "none"
    if not values:
        why = "redirect_uri is missing, and this client registered more than one"
    elif len(values) > 1:
        why = "redirect_uri is repeated"
    else:
        why = "redirect_uri is not one of this client's registered URIs (compared exactly; only a loopback port may differ)"
    raise ErrorPage(UNREGISTERED_REDIRECT, reason=f"{why}. Registered: {listed}")


def check_response_type(request: HttpRequest, client: Application) -> dict[str, str]:
    response_type = single(request, "response_type")
    if not response_type:
        raise InvalidRequest("The response_type parameter is required.")
    if response_type != "code":
        raise UnsupportedResponseType()
    if not client.allows_grant_type(Application.GRANT_AUTHORIZATION_CODE):
        raise UnauthorizedClient("This client may not use the authorization code flow.")
    return {"response_type": response_type}


def require_pkce(request: HttpRequest) -> dict[str, str]:
    """RFC 7636 §4.4.1 and OAuth 2.1: a code_challenge with method S256; plain or none is refused."""
    challenge, method = single(request, "code_challenge"), single(request, "code_challenge_method")
    if not challenge:
        raise InvalidRequest("PKCE is required: send code_challenge with code_challenge_method=S256.")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256.", reason=f"PKCE method {method!r}")
    if not CODE_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("The code_challenge is malformed.")
    return {"code_challenge": challenge, "code_challenge_method": method}


def check_scope(request: HttpRequest, client: Application) -> list[str]:
    return granted_scopes(request.project, client, single(request, "scope"))


def granted_scopes(project: Project, client: Application, scope: str | None) -> list[str]:
    """RFC 6749 §3.3: unknown scopes are an error; known ones the client may not have are dropped."""
    allowed = allowed_scopes(client, project)
    requested = (scope or "").split()
    if not requested:  # the defaults: never OpenID Connect's, which a client must ask for
        return [s for s in allowed if s not in project.openid_scope_names]
    unknown = sorted(set(requested) - set(project.scope_names))
    if unknown:
        raise InvalidScope("The requested scope is not offered here.", reason=f"unknown scopes {unknown}")
    granted = [s for s in dict.fromkeys(requested) if s in allowed]
    if not granted:
        raise InvalidScope("None of the requested scopes is allowed for this client.")
    return granted


def check_resource(request: HttpRequest) -> str:
    return one_resource(request.project, request.GET.getlist("resource"))


def one_resource(project: Project, requested: list[str]) -> str:
    """RFC 8707 §2: the resource must be one this issuer protects; omitted means the default one."""
    values = list(dict.fromkeys(requested))
    if not values:
        return project.default_resource or ""
    if len(values) > 1:
        raise InvalidTarget("Ask for one resource per authorization.")
    if values[0] not in project.resources:
        raise InvalidTarget("The requested resource is not served by this authorization server.",
                            reason=f"resource {values[0][:200]!r}")
    return values[0]


def check_prompt(request: HttpRequest) -> list[str]:
    """OpenID Connect Core §3.1.2.1: `none` must stand alone."""
    prompt = (single(request, "prompt") or "").split()
    if "none" in prompt and len(set(prompt)) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values.")
    return sorted(set(prompt))


MAX_NONCE_LENGTH = 255  # what the code's row keeps


def check_nonce(request: HttpRequest) -> str | None:
    """OpenID Connect Core §3.1.2.1: passed through unmodified to the ID token."""
    nonce = single(request, "nonce")
    if nonce is not None and len(nonce) > MAX_NONCE_LENGTH:
        raise InvalidRequest(f"nonce may be at most {MAX_NONCE_LENGTH} characters.")
    return nonce or None


def check_max_age(request: HttpRequest) -> int | None:
    """OpenID Connect Core §3.1.2.1: the most seconds since the end user last signed in; 0 means now."""
    value = single(request, "max_age")
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise InvalidRequest("max_age must be a whole number of seconds.")
    return int(value)


def signed_in_recently(request: HttpRequest, params: dict[str, Any]) -> bool:
    """Is the signed-in end user's sign-in recent enough for this request? `max_age` (§3.1.2.1) asks
    for one at most that old; an OpenID Connect request needs its time known (for `auth_time`)."""
    signed_in = authenticated_at(request)
    if params.get("max_age") is not None:
        return signed_in is not None and time.time() - signed_in <= params["max_age"]
    wants_id_token = request.project.openid and "openid" in params["scopes"]
    return signed_in is not None or not wants_id_token


# --- What happens next: sign-in, handoff, consent, or the code --------------------------------------


def proceed(request: HttpRequest, client: Application, params: dict[str, Any]) -> HttpResponse:
    prompt = params["prompt"]
    hosted = request.project.login_mode == Project.LoginMode.HOSTED
    user = current_end_user(request) if hosted and "login" not in prompt else None
    if user is not None and not signed_in_recently(request, params):
        user = None  # sign in again (OpenID Connect Core §3.1.2.3)
    if user is None and "none" in prompt:
        raise LoginRequired()
    if user is not None and not needs_consent(user, client, params):
        return redirect_to_client(params["redirect_uri"], issue_code(request, client, user, params), params["issuer"])
    if user is not None and "none" in prompt:
        raise ConsentRequired()
    pending = AuthorizationRequest.objects.create(project=request.project, client=client, params=params, user=user)
    bind_request(request, pending.pk)
    if user is not None:
        return HttpResponseRedirect(page_url(pending, "consent"))
    if hosted:
        return HttpResponseRedirect(page_url(pending, "signin"))
    return HttpResponseRedirect(login_url(request.project, pending))


def needs_consent(user: User, client: Application, params: dict[str, Any]) -> bool:
    """First-party clients never ask; others ask unless remembered, and always for prompt=consent.
    A device code is always confirmed: the person checks it matches their screen (RFC 8628 §5.4)."""
    if params.get("device_grant"):
        return True
    if client.first_party:
        return False
    return "consent" in params["prompt"] or not Consent.objects.covers(user, client, params["scopes"])


def page_url(pending: AuthorizationRequest, page: str, *, absolute: bool = False) -> str:
    """`{issuer}/oauth/{page}?request=…`; relative unless asked, so a browser stays on the host it used."""
    issuer = pending.params["issuer"]
    base = issuer if absolute else urlsplit(issuer).path
    return f"{base}/oauth/{page}?{urlencode({'request': pending.pk})}"


def login_url(project: Project, pending: AuthorizationRequest) -> str:
    if not project.login_url:
        raise ServerError("This project has no login page configured.", reason="handoff without login_url")
    return add_query(project.login_url, {"authorization_request": pending.pk})


def continue_url(request: HttpRequest, pending: AuthorizationRequest, *, absolute: bool = False) -> str:
    """Where the browser goes once `pending.user` is known: consent, or straight back with a code."""
    if needs_consent(pending.user, pending.client, pending.params):
        return page_url(pending, "consent", absolute=absolute)
    return finish(request, pending)


def finish(request: HttpRequest, pending: AuthorizationRequest) -> str:
    """Complete `pending` (once) and return the client's redirect URI carrying the code."""
    with transaction.atomic():
        if not pending.close(AuthorizationRequest.Status.COMPLETED):
            raise InvalidRequest("This authorization request has expired or was already used.")
        if pending.params.get("device_grant"):  # RFC 8628: the device gets its tokens by polling
            device_grant.decide(pending, DeviceGrant.AUTHORIZED)
            return device_grant.done_url(pending, DeviceGrant.AUTHORIZED)
        response = issue_code(request, pending.client, pending.user, pending.params, pending.claims)
    return client_url(pending.redirect_uri, response, pending.params["issuer"])


def deny(pending: AuthorizationRequest, *, unclaimed: bool = False) -> str:
    """Close `pending` as denied (once) and return the client's redirect URI carrying access_denied.

    `unclaimed`: only while no end user is attached yet (the operator's handoff decision).
    """
    if not pending.close(AuthorizationRequest.Status.DENIED, unclaimed=unclaimed):
        raise InvalidRequest("This authorization request has expired or was already used.")
    if pending.params.get("device_grant"):
        with contextlib.suppress(InvalidRequest):  # an expired device code is as good as denied
            device_grant.decide(pending, DeviceGrant.DENIED)
        return device_grant.done_url(pending, DeviceGrant.DENIED)
    denied = {"error": "access_denied", "error_description": "The request was denied.", "state": pending.state}
    return client_url(pending.redirect_uri, denied, pending.params["issuer"])


def issue_code(request: HttpRequest, client: Application, user: User, params: dict[str, Any],
               claims: dict | None = None) -> dict:
    """Store the Grant through the toolkit's validator (`save_authorization_code`); the response params."""
    oauth_request = OAuthlibRequest(params["issuer"] + "/oauth/authorize")
    oauth_request.client, oauth_request.client_id, oauth_request.user = client, client.client_id, user
    oauth_request.django_request, oauth_request.project = request, client.project  # for tenant-aware hooks
    oauth_request.redirect_uri, oauth_request.scopes = params["redirect_uri"], params["scopes"]
    oauth_request.state, oauth_request.nonce, oauth_request.claims = params["state"], params.get("nonce"), claims or None
    oauth_request.auth_time = auth_time(request)
    oauth_request.code_challenge = params["code_challenge"]
    oauth_request.code_challenge_method = params["code_challenge_method"]
    oauth_request.resource = [params["resource"]] if params["resource"] else []
    oauth_request.dpop_jkt = params.get("dpop_jkt")
    code = {"code": generate_token(43)}
    oauth2_settings.OAUTH2_VALIDATOR_CLASS().save_authorization_code(client.client_id, code, oauth_request)
    return {"code": code["code"], "state": params["state"]}


def auth_time(request: HttpRequest):
    """OpenID Connect `auth_time`: the hosted sign-in's time, or now, when the operator vouches (handoff)."""
    if request.project.login_mode == Project.LoginMode.HANDOFF:
        return timezone.now()
    signed_in = authenticated_at(request)
    return datetime.fromtimestamp(signed_in, tz=UTC) if signed_in is not None else None


def pending_for_browser(request: HttpRequest, authorization_id: str | None) -> AuthorizationRequest:
    """The live request `authorization_id` of this project, started in this very browser."""
    pending = None
    if authorization_id and owns_request(request, authorization_id):
        pending = (AuthorizationRequest.objects.live(request.project).filter(pk=authorization_id, client__disabled_at__isnull=True)
                   .select_related("client", "user").first())
    if pending is None:
        raise ErrorPage("This link has expired or was already used. Go back to the application and try again.",
                        title="This link has expired")
    return pending


# --- Responses --------------------------------------------------------------------------------------


def add_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def client_url(redirect_uri: str, params: dict[str, str | None], issuer: str) -> str:
    """The authorization response: `params` plus RFC 9207 `iss` in the redirect URI's query."""
    return add_query(redirect_uri, {**params, "iss": issuer})


def redirect_browser(pending: AuthorizationRequest, url: str) -> HttpResponse:
    """Send the browser on: to one of our pages (a relative URL) or back to the client."""
    if url.startswith("/"):
        return HttpResponseRedirect(url)
    return OAuth2ResponseRedirect(url, ["http", "https", urlsplit(pending.redirect_uri).scheme])


def redirect_to_client(redirect_uri: str, params: dict[str, str | None], issuer: str) -> HttpResponse:
    url = client_url(redirect_uri, params, issuer)
    # The redirect URI was matched against the client's registration, so its scheme is allowed.
    return OAuth2ResponseRedirect(url, [urlsplit(redirect_uri).scheme])


def branding(project: Project) -> dict[str, str]:
    accent = project.accent_color if ACCENT.fullmatch(project.accent_color or "") else "#4f46e5"
    return {"brand_name": project.brand_name, "logo_url": project.logo_url, "accent_color": accent}


def error_page(request: HttpRequest, page: ErrorPage) -> HttpResponse:
    if page.reason:
        logger.info("authorize refused: %s", page.reason)
    context = {**branding(request.project), "title": page.title, "message": page.message, "reason": page.reason}
    response = render(request, "oauth/error.html", context, status=page.status)
    response["Cache-Control"] = "no-store"
    return response
