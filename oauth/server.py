"""OAUTH2_SERVER_CLASS: oauthlib's endpoints composed from our grant list (`oauth.grants.GRANTS`).

Built the way oauthlib's own pre-configured `Server` composes its endpoints, through their public
constructors, but with only the grants in `GRANTS` (no password or implicit grant;
RFC 9700 §2.4) and the project's lifetimes and token values (`oauth.tokens.issue`).
"""

from oauthlib.oauth2 import (
    AuthorizationEndpoint,
    BearerToken,
    IntrospectEndpoint,
    ResourceEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)

from oauth import grants
from oauth.tokens import issue as tokens


class Server(AuthorizationEndpoint, IntrospectEndpoint, TokenEndpoint, ResourceEndpoint, RevocationEndpoint):
    """The token endpoint runs every grant of `GRANTS` and nothing else."""

    def __init__(self, request_validator, token_expires_in=None, token_generator=None,
                 refresh_token_generator=None, *args, **kwargs):
        self.bearer = BearerToken(request_validator, token_generator or tokens.generate_access_token,
                                  tokens.access_token_lifetime,
                                  refresh_token_generator or tokens.generate_refresh_token)
        by_type = {grant.grant_type: grant.build(request_validator) for grant in grants.GRANTS}
        code = by_type[grants.AUTHORIZATION_CODE]
        AuthorizationEndpoint.__init__(self, default_response_type="code", response_types={"code": code},
                                       default_token_type=self.bearer)
        TokenEndpoint.__init__(self, default_grant_type=grants.AUTHORIZATION_CODE, grant_types=by_type,
                               default_token_type=self.bearer)
        ResourceEndpoint.__init__(self, default_token="Bearer", token_types={"Bearer": self.bearer})
        RevocationEndpoint.__init__(self, request_validator)
        IntrospectEndpoint.__init__(self, request_validator)
