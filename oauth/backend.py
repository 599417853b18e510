"""The toolkit's OAuthLibCore, made tenant-aware: the validator sees the Django request's project.

oauthlib builds its own request objects from the URI, body and headers, so the Django request
(and with it `request.project` and `request.issuer`, set by `projects.tenancy`) does not reach
the validator. Each entry point binds the Django request to a context variable for the length of
the call; `django_request(oauthlib_request)` gives it back inside validator hooks.
"""

import base64
import binascii
import contextlib
import contextvars
from collections.abc import Iterator

from django.http import HttpRequest
from oauth2_provider.oauth2_backends import OAuthLibCore

from .errors import InvalidClient, InvalidRequest

_current: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("mcpauth_django_request", default=None)


@contextlib.contextmanager
def bound(request: HttpRequest) -> Iterator[HttpRequest]:
    """Make `request` the Django request of every oauthlib request created inside the block."""
    token = _current.set(request)
    try:
        yield request
    finally:
        _current.reset(token)


def django_request(oauthlib_request=None) -> HttpRequest | None:
    """The Django request behind an oauthlib request (or the one bound right now).

    The bound one first: it is the same request, and asking an oauthlib request for an attribute it
    lacks raises (and catches) an AttributeError inside oauthlib, several times per token request.
    Only `oauth.endpoints.authorize.issue_code`, outside any bound block, sets the attribute.
    """
    found = _current.get()
    if found is None and oauthlib_request is not None:
        found = own(oauthlib_request, "django_request")
    return found


def own(request, name: str, default=None):
    """An attribute our hooks set on an oauthlib request (`request.grant_instance = …`), else `default`.

    Not `getattr`: oauthlib's Request answers a name it lacks from the request's parameters, so a
    form field called `token_claims` or `refresh_token_instance` would stand in for one our hooks
    never set (a 500, or worse); and for any other name it raises an AttributeError inside oauthlib
    that getattr then catches, several times per token request."""
    return vars(request).get(name, default)


def project_of(oauthlib_request=None):
    """The project (tenant) the current OAuth request is addressed to, or None outside a project route."""
    request = django_request(oauthlib_request)
    return getattr(request, "project", None)


def issuer_of(oauthlib_request=None) -> str:
    request = django_request(oauthlib_request)
    issuer = getattr(request, "issuer", None)
    if issuer:
        return issuer
    project = project_of(oauthlib_request)
    return project.issuer if project is not None else ""


def refuse_nul_bytes(request: HttpRequest) -> None:
    """PostgreSQL text cannot hold NUL: refuse it up front instead of failing in a query (a 500)."""
    if any("\x00" in value for values in request.POST.lists() for value in values[1]):
        raise InvalidRequest("Parameters must not contain NUL characters.")
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return
        if b"\x00" in decoded or b"%00" in decoded:
            raise InvalidClient(reason="NUL in basic credentials")


# The request headers oauthlib and the toolkit's validator read, under both of the names they use.
OAUTHLIB_HEADERS = (("HTTP_AUTHORIZATION", "Authorization"), ("CONTENT_TYPE", "Content-Type"),
                    ("HTTP_ORIGIN", "Origin"))


class TenantOAuthLibCore(OAuthLibCore):
    """OAuthLibCore whose every entry point runs with the Django request bound (see module doc)."""

    def extract_headers(self, request):
        """The headers oauthlib needs, not a copy of the whole WSGI environ on every request."""
        meta = request.META
        headers = {}
        for key, name in OAUTHLIB_HEADERS:
            if key in meta:
                headers[key] = headers[name] = meta[key]
        if request.is_secure():
            headers["X_DJANGO_OAUTH_TOOLKIT_SECURE"] = "1"
        return headers

    def validate_authorization_request(self, request):
        with bound(request):
            return super().validate_authorization_request(request)

    def create_authorization_response(self, request, scopes, credentials, allow):
        with bound(request):
            return super().create_authorization_response(request, scopes, credentials, allow)

    def create_token_response(self, request):
        with bound(request):
            return super().create_token_response(request)

    def create_revocation_response(self, request):
        with bound(request):
            return super().create_revocation_response(request)

    def verify_request(self, request, scopes):
        with bound(request):
            return super().verify_request(request, scopes)

    def authenticate_client(self, request):
        with bound(request):
            return super().authenticate_client(request)
