"""OpenID Connect Core §5.3 UserInfo endpoint: `GET|POST {issuer}/oauth/userinfo` with a Bearer token.

oauthlib's `UserInfoEndpoint` runs it with the project's validator (`oauth.tokens.id_token`): the access token
must be live, of this project, for an end user, and carry `openid`; the answer is the claims its
scopes allow. Errors follow RFC 6750 §3: 401 `invalid_token` (or no error code when no token was
sent, §3.1), 403 `insufficient_scope`, each with `WWW-Authenticate: Bearer`. A project without
OpenID Connect has no userinfo endpoint (404).
"""

from django.http import HttpRequest, HttpResponse
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import InsufficientScopeError, InvalidTokenError
from oauthlib.openid.connect.core.endpoints.userinfo import UserInfoEndpoint

from oauth.backend import bound
from oauth.endpoints.decorator import oauth_endpoint
from oauth.errors import InvalidRequest, InvalidToken, NotFound, OAuthError
from oauth.tokens import id_token


class NoToken(OAuthError):
    """RFC 6750 §3.1: a request without any credential gets the challenge and no error code."""

    status = 401

    def __init__(self, realm: str):
        super().__init__("", headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})

    def payload(self) -> dict[str, str]:
        return {"error": "invalid_token", "error_description": "An access token is required."}


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403
    description = "The access token was not issued with the openid scope."

    def __init__(self):
        super().__init__(headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="openid", '
                                                      f'error_description="{self.description}"'})


def presented_token(request: HttpRequest) -> bool:
    """RFC 6750 §2.1/§2.2: in the Authorization header or a form body; never in the query (§2.3, RFC 9700)."""
    if "access_token" in request.GET:
        raise InvalidRequest("Send the access token in the Authorization header, not in the URL.")
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return (scheme.lower() == "bearer" and bool(value.strip())) or bool(request.POST.get("access_token"))


@oauth_endpoint(("GET", "POST"))
def userinfo(request: HttpRequest) -> HttpResponse:
    if not id_token.enabled(request.project):
        raise NotFound()
    if not presented_token(request):
        raise NoToken(request.issuer)
    endpoint = UserInfoEndpoint(oauth2_settings.OAUTH2_VALIDATOR_CLASS())
    body = request.body.decode() if request.method == "POST" else None
    headers = {name: request.META[key] for key, name in (("HTTP_AUTHORIZATION", "Authorization"),
                                                         ("CONTENT_TYPE", "Content-Type")) if key in request.META}
    try:
        with bound(request):
            headers, body, status = endpoint.create_userinfo_response(
                f"{request.issuer}/oauth/userinfo", request.method, body, headers)
    except InsufficientScopeError:
        raise InsufficientScope() from None
    except InvalidTokenError:
        raise InvalidToken("The access token is invalid, expired, revoked or of another issuer.") from None
    response = HttpResponse(body, status=status, content_type=headers.get("Content-Type", "application/json"))
    return response
