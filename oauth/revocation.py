"""Token revocation (RFC 7009): the toolkit's RevokeTokenView, per project.

`POST {issuer}/oauth/revoke`, client-authenticated (basic, post, or `client_id` for public
clients). §2.2: 200 whether or not the token was known; a client revokes only its own tokens,
and revoking a refresh token ends its whole family (`Validator.revoke_token`).
"""

from django.db import transaction
from django.http import HttpResponse
from oauth2_provider.views import RevokeTokenView as ToolkitRevokeTokenView

from .backend import refuse_nul_bytes
from .endpoint import oauth_endpoint


class RevokeTokenView(ToolkitRevokeTokenView):
    def post(self, request, *args, **kwargs):
        refuse_nul_bytes(request)
        with transaction.atomic():
            _, headers, body, status = self.create_revocation_response(request)
        response = HttpResponse(body or "", status=status, content_type="application/json" if body else None)
        for name, value in headers.items():
            response[name] = value
        return response


revoke = oauth_endpoint(("POST",))(RevokeTokenView.as_view())
