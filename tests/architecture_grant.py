"""A grant that exists only in tests/test_architecture.py: proves that adding a grant is this
module plus one entry in `oauth.grants.GRANTS`.

It authenticates the client as every grant does and answers with what it was asked, so the test
can tell that the token endpoint dispatched to it; it issues nothing.
"""

import json

from oauthlib.oauth2.rfc6749 import errors as oauthlib_errors
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

GRANT_TYPE = "urn:mcpauth:test:grant-type:echo"
HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}


class EchoGrant(GrantTypeBase):
    def create_token_response(self, request, token_handler):
        try:
            self.validate_client_authentication(request)
        except oauthlib_errors.OAuth2Error as e:
            return {**HEADERS, **e.headers}, e.json, e.status_code
        return dict(HEADERS), json.dumps({"grant_type": request.grant_type, "client_id": request.client.client_id}), 200


def factory(request_validator) -> EchoGrant:
    return EchoGrant(request_validator)
