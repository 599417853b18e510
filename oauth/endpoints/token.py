"""Token endpoint (RFC 6749 §3.2, RFC 7636, RFC 8707, RFC 8693): the toolkit's TokenView, per project.

`POST {issuer}/oauth/token` with `authorization_code`, `refresh_token`, `client_credentials`,
`urn:ietf:params:oauth:grant-type:token-exchange` and `urn:ietf:params:oauth:grant-type:device_code`. The grants come from `oauth.grants`
and are composed by `oauth.server.Server` (OAUTH2_SERVER_CLASS); the policy lives in `oauth.validator`
and the grants' hooks, and `oauth.tokens.issue` (values, lifetimes, audience). This module is the
view: strict request checks, then the toolkit's view runs the server.
"""

import json

from django.http import HttpResponse
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.views import TokenView as ToolkitTokenView

from infra.observe import refused
from oauth.backend import refuse_nul_bytes
from oauth.endpoints.decorator import oauth_endpoint
from oauth.errors import InvalidRequest
from oauth.tokens import dpop


def require_grant_type(request) -> None:
    """RFC 6749 §5.2: a request without grant_type is malformed (oauthlib would guess one)."""
    if not request.POST.get("grant_type"):
        raise InvalidRequest("grant_type is required.")


class TokenView(ToolkitTokenView):
    """The toolkit's token view, with no transaction around the request: the statement that stores
    the new tokens also spends the code or refresh token they came from, atomically, and each
    revocation has its own transaction (see `oauth.validator`)."""

    def post(self, request, *args, **kwargs):
        refuse_nul_bytes(request)
        require_grant_type(request)
        dpop.read_proof(request)
        _, headers, body, status = self.create_token_response(request)
        if status >= 400:  # oauthlib rendered this error itself (RFC 6749 §5.2 body)
            refused(json.loads(body).get("error", "server_error"))
        response = HttpResponse(body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return dpop.add_nonce(request, response)


_view = TokenView()  # holds no per-request state: one instance, no as_view()/method_decorator per request


@oauth_endpoint(("POST",))
@sensitive_post_parameters("client_secret", "code", "code_verifier", "refresh_token", "subject_token",
                           "actor_token", "assertion", "device_code")
def token(request):
    return _view.post(request)
