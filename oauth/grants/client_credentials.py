"""The client credentials grant (RFC 6749 §4.4) at the token endpoint.

Only confidential clients registered with a project secret or in the dashboard may hold it (its
spec in `oauth.grants`, which `Validator.validate_grant_type` reads); the token has no end user.
"""

from oauthlib.oauth2 import ClientCredentialsGrant

from oauth.tokens import issue as tokens


def factory(request_validator) -> ClientCredentialsGrant:
    return ClientCredentialsGrant(request_validator, post_token=[tokens.bind_audience])
