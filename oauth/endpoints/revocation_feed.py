"""The revocation feed at `{issuer}/oauth/revocations` (mcpauth; API.md "Revocation feed").

`GET ?since={cursor}` with a project secret holding `introspect` (Bearer, as introspection takes it)
lists the `jti`s of JWT access tokens revoked since the cursor, oldest first, at most `feed.PAGE`
of them, and the cursor to continue from: `{"revoked": [{"jti", "revoked_at", "exp"}], "next"}`.
A resource server that verifies JWTs locally polls it (mcpauth_rs does) and refuses those tokens.
"""

import json

from django.http import HttpRequest, HttpResponse

from oauth.clients.credentials import require_secret
from oauth.endpoints.decorator import oauth_endpoint
from oauth.tokens import feed


@oauth_endpoint(("GET",))
def revocations(request: HttpRequest) -> HttpResponse:
    require_secret(request, "introspect")
    since = feed.parse_cursor(request.GET.get("since"))
    return HttpResponse(json.dumps(feed.page(request.project, since)), content_type="application/json")
