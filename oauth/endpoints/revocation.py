"""Token revocation (RFC 7009): the toolkit's RevokeTokenView, per project.

`POST {issuer}/oauth/revoke`, client-authenticated (basic, post, or `client_id` for public
clients). §2.2: 200 whether or not the token was known; a client revokes only its own tokens,
and revoking a refresh token ends its whole family (`Validator.revoke_token`).
"""

import json

from django.http import HttpResponse
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.views import RevokeTokenView as ToolkitRevokeTokenView

from infra.observe import refused
from oauth.backend import refuse_nul_bytes
from oauth.endpoints.decorator import oauth_endpoint


class RevokeTokenView(ToolkitRevokeTokenView):
    def post(self, request, *args, **kwargs):
        refuse_nul_bytes(request)
        # No transaction around the request: `Validator.revoke_token` makes each revocation one
        # statement, or one transaction when a grant's tokens go with it.
        _, headers, body, status = self.create_revocation_response(request)
        if status >= 400:  # oauthlib rendered this error itself (RFC 7009 §2.2.1: RFC 6749 §5.2's body)
            refused(json.loads(body).get("error", "server_error") if body else "server_error")
        response = HttpResponse(body or "", status=status, content_type="application/json" if body else None)
        for name, value in headers.items():
            response[name] = value
        return response


_view = RevokeTokenView()  # holds no per-request state: one instance, no as_view()/method_decorator per request


@oauth_endpoint(("POST",))
@sensitive_post_parameters("client_secret", "token")
def revoke(request):
    return _view.post(request)
