"""The grant types this server offers (RFC 6749 §4, RFC 7591 §2): one list everyone reads.

The token endpoint (`oauth.server.Server`, through oauthlib's `TokenEndpoint(grant_types=...)`),
the validator (`oauth.validator.Validator`, composed of each grant's hooks), discovery's
`grant_types_supported` (RFC 8414 §2), the client-metadata checks that narrow a registration's
`grant_types` (RFC 7591 §3.2.1), the dashboard's and the management API's choices and
`createclient --grant` all read `GRANTS`. Adding a grant is one module in this package (its
oauthlib grant factory, and its validator hooks in a mixin) plus one entry here; until then a client
asking for it (claude.ai lists `jwt-bearer`) has it dropped, not refused.

A spec names its factory and hooks by dotted path, imported when the server and the validator are
built: the grants' own modules use the token service, which reaches client metadata, which reads
this list, so importing them from here would close a circle.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # ID-JAG (oauth.grants.jwt_bearer)
# OAuth 2.1 removed these; named so that a client asking for one is told why it was dropped.
REMOVED = {"implicit": "removed in OAuth 2.1", "password": "removed in OAuth 2.1"}

# RFC 6749 §5.1: a token response is JSON and never cached (for the grants that render their own).
TOKEN_RESPONSE_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}

EVERY_PATH = frozenset({"cimd", "open", "secret", "dashboard"})
TRUSTED_PATHS = frozenset({"secret", "dashboard"})  # API.md: with a project secret, or by an operator


def always(project) -> bool:
    return True


def trusts_an_issuer(project) -> bool:
    """ID-JAG: offered once the project trusts an enterprise identity provider."""
    from enterprise.models import TrustedIssuer  # the registry imports no models when it loads

    return TrustedIssuer.objects.of(project).exists()


@dataclass(frozen=True)
class Grant:
    """One grant type: how the token endpoint runs it, and who may register it.

    `factory`: dotted path of `factory(request_validator)` returning the oauthlib grant;
    `hooks`: dotted path of its validator mixin, if it has hooks; `label`: how the dashboard
    names it; `paths`: the ways in (`Application.Path`) whose clients may hold it; `confidential`:
    only clients that authenticate at the token endpoint; `requires`: other grants, one of
    which the client must also hold; `enabled`: whether `project` offers it (a per-project switch, when it has one);
    `toolkit_grant`: the toolkit's `Application.authorization_grant_type` ("authorization-code",
    "client-credentials") stored for a client whose main grant this is, if the toolkit has one.
    """

    grant_type: str
    factory: str
    label: str
    hooks: str | None = None
    paths: frozenset[str] = EVERY_PATH
    confidential: bool = False
    requires: tuple[str, ...] = ()
    enabled: Callable[[object], bool] = always
    toolkit_grant: str | None = None

    def build(self, request_validator):
        """The oauthlib grant of this type, for the token endpoint."""
        return import_string(self.factory)(request_validator)


GRANTS: list[Grant] = [
    Grant(AUTHORIZATION_CODE, "oauth.grants.authorization_code.factory", "Authorization code (with PKCE)",
          hooks="oauth.grants.authorization_code.AuthorizationCodeHooks", toolkit_grant="authorization-code"),
    Grant(REFRESH_TOKEN, "oauth.grants.refresh_token.factory", "Refresh token",
          hooks="oauth.grants.refresh_token.RefreshTokenHooks",
          requires=(AUTHORIZATION_CODE, DEVICE_CODE)),  # refresh tokens come from a code exchange or a device code
    Grant(CLIENT_CREDENTIALS, "oauth.grants.client_credentials.factory", "Client credentials (confidential clients only)",
          paths=TRUSTED_PATHS, confidential=True, toolkit_grant="client-credentials"),
    Grant(TOKEN_EXCHANGE, "oauth.grants.token_exchange.factory", "Token exchange (RFC 8693)", paths=TRUSTED_PATHS),
    Grant(DEVICE_CODE, "oauth.grants.device_code.factory", "Device authorization (RFC 8628)",
          hooks="oauth.grants.device_code.DeviceCodeHooks", enabled=lambda project: bool(project.device_grant),
          toolkit_grant=DEVICE_CODE),  # the toolkit's Application.GRANT_DEVICE_CODE has the same name
    Grant(JWT_BEARER, "oauth.grants.jwt_bearer.factory", "JWT bearer: enterprise ID-JAG (confidential clients only)",
          confidential=True, enabled=trusts_an_issuer),
]


def find(grant_type: str) -> Grant | None:
    return next((grant for grant in GRANTS if grant.grant_type == grant_type), None)


def supported(project) -> list[str]:
    """RFC 8414 `grant_types_supported`: every grant `project` accepts from some client."""
    return [grant.grant_type for grant in GRANTS if grant.enabled(project)]


def on_path(path: str) -> list[Grant]:
    """The grants a client registered by way of `path` may hold (the dashboard's and the CLI's choices)."""
    return [grant for grant in GRANTS if path in grant.paths]


def toolkit_grants() -> dict[str, str]:
    """RFC 7591 grant type name -> the toolkit's grant constant, for the grants the toolkit names."""
    return {grant.grant_type: grant.toolkit_grant for grant in GRANTS if grant.toolkit_grant}


def toolkit_grant_of(grant_types) -> str:
    """The toolkit's one `authorization_grant_type` for a client holding `grant_types` (ours is the
    metadata's list): the first grant of GRANTS the toolkit names, else client-credentials."""
    return next((grant.toolkit_grant for grant in GRANTS if grant.toolkit_grant and grant.grant_type in grant_types),
                "client-credentials")


def validator_hooks() -> tuple[type, ...]:
    """The grants' validator mixins, in list order (`oauth.validator.Validator`'s bases)."""
    return tuple(import_string(grant.hooks) for grant in GRANTS if grant.hooks)


def refusal(grant_type: str, project, path: str, confidential: bool) -> str | None:
    """Why a client registered by way of `path` may not hold `grant_type`, or None when it may."""
    grant = find(grant_type)
    if grant is None:
        return REMOVED.get(grant_type, "not supported by this server")
    if not grant.enabled(project):
        return "not enabled for this project"
    if path not in grant.paths:
        return "needs registration with a project secret"
    if grant.confidential and not confidential:
        return "needs a confidential client"
    return None
