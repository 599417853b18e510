"""Token endpoint (RFC 6749 §3.2, RFC 7636, RFC 8707, RFC 8693): the toolkit's TokenView, per project.

`POST {issuer}/oauth/token` with `authorization_code`, `refresh_token`, `client_credentials`,
`urn:ietf:params:oauth:grant-type:token-exchange` and `urn:ietf:params:oauth:grant-type:device_code`.
The policy lives in `oauth.validator` (hooks) and `oauth.tokens.issue` (values, lifetimes,
audience); this module wires them into oauthlib's server and stores what each request issues in
one statement (`infra.rows.write`).
"""

from django.http import HttpResponse
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.views import TokenView as ToolkitTokenView
from oauthlib.oauth2 import Server as OAuthlibServer

from oauth.backend import refuse_nul_bytes
from oauth.endpoints.decorator import oauth_endpoint
from oauth.errors import InvalidRequest
from oauth.grants import device_code as device_grant
from oauth.grants.token_exchange import GRANT_TYPE as TOKEN_EXCHANGE
from oauth.grants.token_exchange import TokenExchangeGrant
from oauth.tokens import issue as tokens


class Server(OAuthlibServer):
    """OAUTH2_SERVER_CLASS: per-project lifetimes, our grants only, audience bound before minting."""

    def __init__(self, request_validator, token_expires_in=None, token_generator=None,
                 refresh_token_generator=None, *args, **kwargs):
        super().__init__(request_validator, tokens.access_token_lifetime,
                         token_generator or tokens.generate_access_token,
                         refresh_token_generator or tokens.generate_refresh_token, *args, **kwargs)
        self.token_exchange_grant = TokenExchangeGrant(request_validator)
        self.device_code_grant = device_grant.DeviceCode(request_validator)  # per project (RFC 8628)
        # No password or implicit grants (RFC 9700 §2.4; MCP needs neither).
        self._grant_types = {
            "authorization_code": self.auth_grant,
            "refresh_token": self.refresh_grant,
            "client_credentials": self.credentials_grant,
            TOKEN_EXCHANGE: self.token_exchange_grant,
            device_grant.GRANT_TYPE: self.device_code_grant,
        }
        for grant in (self.auth_grant, self.refresh_grant, self.credentials_grant, self.device_code_grant):
            grant.custom_validators.post_token.append(tokens.bind_audience)


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
        _, headers, body, status = self.create_token_response(request)
        response = HttpResponse(body, status=status, content_type="application/json")
        for name, value in headers.items():
            response[name] = value
        return response


_view = TokenView()  # holds no per-request state: one instance, no as_view()/method_decorator per request


@oauth_endpoint(("POST",))
@sensitive_post_parameters("client_secret", "code", "code_verifier", "refresh_token", "subject_token",
                           "actor_token", "device_code")
def token(request):
    return _view.post(request)
