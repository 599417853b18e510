"""Token introspection (RFC 7662) at `{issuer}/oauth/introspect` and the alias `/api/oauth/introspect`.

The caller is a confidential client of the project, registered with a project secret or in the
dashboard, authenticated by its registered method (`oauth.clients.auth`: client_secret_basic,
client_secret_post or private_key_jwt), or holds a project secret with `introspect` (Bearer).
Clients that registered themselves (open DCR, CIMD) may hold keys for private_key_jwt but are
not resource servers: they cannot introspect. The answer for any token that is not a live
access token of this project (unknown, expired, revoked, another project's) is exactly
`{"active": false}`. Answers come from the shared cache kept by `oauth.tokens.issue`.
"""

from django.http import HttpRequest, HttpResponse
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode

from oauth.backend import TenantOAuthLibCore, bound, refuse_nul_bytes
from oauth.clients.credentials import bearer_token, require_secret
from oauth.endpoints.decorator import oauth_endpoint, read_json_object
from oauth.endpoints.parsing import FORM, JSON, MULTIPART, Body
from oauth.errors import InvalidClient, InvalidRequest
from oauth.models import Application
from oauth.tokens import issue as tokens
from oauth.validator import Validator

INTROSPECTING_PATHS = (Application.Path.SECRET, Application.Path.DASHBOARD)
_core = TenantOAuthLibCore(server=object())  # only its public extractors (body, headers) are used here
_validator = Validator()


def authenticate_caller(request: HttpRequest) -> None:
    """A project secret with `introspect`, or a trusted confidential client of this project; else 401."""
    if bearer_token(request) is not None:
        require_secret(request, "introspect")
        return
    refuse_nul_bytes(request)  # in Basic credentials; the body's NULs are refused by `oauth_endpoint` already
    # Client authentication reads the body's parameters and the headers; the URL goes without its
    # query string (nothing here reads it, and oauthlib refuses some that Django accepts).
    oauth_request = OAuthlibRequest(request.build_absolute_uri(request.path), request.method,
                                    urlencode(_core.extract_body(request)), _core.extract_headers(request))
    with bound(request):
        ok = _validator.authenticate_client(oauth_request)
    client = oauth_request.client
    if not ok or not isinstance(client, Application) or client.client_type != Application.CLIENT_CONFIDENTIAL \
            or client.registration_path not in INTROSPECTING_PATHS:
        raise InvalidClient(headers={"WWW-Authenticate": 'Basic realm="introspection"'},
                            reason="introspection caller not authenticated")


def presented_token(request: HttpRequest) -> str:
    # The body was checked by `oauth_endpoint` (media type, strict UTF-8, no NUL, no repeated field):
    # a form is read as the pairs it kept, without building Django's QueryDict.
    if request.content_type == FORM:
        token = next((value for name, value in getattr(request, "checked_form", ()) if name == "token"), None)
    elif request.content_type == JSON:
        token = read_json_object(request).get("token")
    else:
        token = request.POST.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidRequest("The token parameter is required.")
    return token


@oauth_endpoint(("POST",), body=Body((FORM, MULTIPART, JSON)))  # JSON: mcpauth
def introspect(request: HttpRequest) -> HttpResponse:
    authenticate_caller(request)
    token = presented_token(request)
    return HttpResponse(tokens.introspection_json(request.project, request.issuer, token),
                        content_type="application/json")
