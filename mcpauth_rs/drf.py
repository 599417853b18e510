"""A Django REST framework authentication class for APIs protected by mcpauth (RFC 6750, RFC 9728).

    # settings.py
    MCPAUTH_RESOURCE_SERVER = {
        "issuer": "https://auth.example.com/p/acme",
        "resource": "https://api.example.com/mcp",
        "introspection_secret": os.environ["MCPAUTH_INTROSPECTION_SECRET"],
        "required_scopes": ["mcp:tools"],
    }
    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["mcpauth_rs.drf.McpauthAuthentication"]}
    # urls.py: serve the metadata document the 401 challenge points at
    path(".well-known/oauth-protected-resource/mcp", protected_resource_metadata)

`request.user` is a `TokenUser`, `request.auth` the `VerifiedToken`.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .core import InsufficientScope, ResourceServer, TokenRejected, VerifiedToken


@functools.lru_cache(maxsize=1)
def configured_resource_server() -> ResourceServer:
    """The one `ResourceServer` described by `settings.MCPAUTH_RESOURCE_SERVER` (kept for its cache)."""
    return ResourceServer(**settings.MCPAUTH_RESOURCE_SERVER)


class TokenUser:
    """The caller as the token describes it: subject, client and scopes; no database row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, token: VerifiedToken):
        self.token = token
        self.subject = token.subject
        self.client_id = token.client_id
        self.scopes = token.scopes

    def __str__(self) -> str:
        return self.subject or self.client_id


class InsufficientScopeError(exceptions.PermissionDenied):
    default_detail = "The access token lacks a required scope."
    default_code = "insufficient_scope"


class McpauthAuthentication(BaseAuthentication):
    """Bearer tokens checked by `ResourceServer.verify`: active, `iss`, `aud`, `exp`, scopes; and,
    with `dpop: True` in the settings, DPoP-bound tokens with their proofs (RFC 9449 §7). The URL
    a proof must name is the resource's public origin plus the request path (proxies aside)."""

    def get_resource_server(self) -> ResourceServer:
        return configured_resource_server()

    def authenticate(self, request) -> tuple[TokenUser, VerifiedToken] | None:
        authorization = get_authorization_header(request).decode("latin-1")
        if authorization.partition(" ")[0].lower() not in ("bearer", "dpop"):
            return None  # no token: DRF answers 401 with `authenticate_header` below
        resource_server = self.get_resource_server()
        try:
            verified = resource_server.verify_request(
                authorization, method=request.method, url=public_url(resource_server.resource, request.path),
                dpop=request.META.get("HTTP_DPOP"))
        except InsufficientScope:
            raise InsufficientScopeError() from None
        except TokenRejected as exc:
            request.mcpauth_rejection = exc  # for the challenge (scheme and error code)
            raise exceptions.AuthenticationFailed("The access token is invalid.", code=exc.error) from None
        return TokenUser(verified), verified

    def authenticate_header(self, request) -> str:
        rejection = getattr(request, "mcpauth_rejection", None)
        return self.get_resource_server().challenge(rejection)["WWW-Authenticate"]


def public_url(resource: str, path: str) -> str:
    """The request's URL as clients see it: the resource's scheme and host, the request's path."""
    parts = urllib.parse.urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{path}"


def protected_resource_metadata(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """RFC 9728 §3: this resource's metadata, public and cacheable."""
    response = JsonResponse(configured_resource_server().metadata())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response
