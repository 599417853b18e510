"""The grant types this server offers (RFC 6749 §4, RFC 7591 §2): one list everyone reads.

Discovery's `grant_types_supported` (RFC 8414 §2), the client-metadata checks that narrow a
registration's `grant_types` (RFC 7591 §3.2.1) and `createclient --grant` all read `GRANTS`.
Adding a grant is its token-endpoint handler plus one entry here; until then a client asking
for it (claude.ai lists `jwt-bearer`) has it dropped, not refused.
"""

from collections.abc import Callable
from dataclasses import dataclass

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
# OAuth 2.1 removed these; named so that a client asking for one is told why it was dropped.
REMOVED = {"implicit": "removed in OAuth 2.1", "password": "removed in OAuth 2.1"}

EVERY_PATH = frozenset({"cimd", "open", "secret", "dashboard"})
TRUSTED_PATHS = frozenset({"secret", "dashboard"})  # API.md: with a project secret, or by an operator


def always(project) -> bool:
    return True


@dataclass(frozen=True)
class Grant:
    """One grant type and who may register it.

    `paths`: the ways in (`Application.Path`) whose clients may hold it; `confidential`: only
    clients that authenticate at the token endpoint; `requires`: other grants, one of which the
    client must also hold; `enabled`: whether `project` offers it (a per-project switch, when it has one).
    """

    grant_type: str
    paths: frozenset[str] = EVERY_PATH
    confidential: bool = False
    requires: tuple[str, ...] = ()
    enabled: Callable[[object], bool] = always


GRANTS: tuple[Grant, ...] = (
    Grant(AUTHORIZATION_CODE),
    # Refresh tokens come from a code exchange or a device code.
    Grant(REFRESH_TOKEN, requires=(AUTHORIZATION_CODE, DEVICE_CODE)),
    Grant(CLIENT_CREDENTIALS, paths=TRUSTED_PATHS, confidential=True),
    Grant(TOKEN_EXCHANGE, paths=TRUSTED_PATHS),
    Grant(DEVICE_CODE, enabled=lambda project: bool(project.device_grant)),  # RFC 8628, oauth.grants.device_code
)
BY_TYPE = {grant.grant_type: grant for grant in GRANTS}


def supported(project) -> list[str]:
    """RFC 8414 `grant_types_supported`: every grant `project` accepts from some client."""
    return [grant.grant_type for grant in GRANTS if grant.enabled(project)]


def refusal(grant_type: str, project, path: str, confidential: bool) -> str | None:
    """Why a client registered by way of `path` may not hold `grant_type`, or None when it may."""
    grant = BY_TYPE.get(grant_type)
    if grant is None:
        return REMOVED.get(grant_type, "not supported by this server")
    if not grant.enabled(project):
        return "not enabled for this project"
    if path not in grant.paths:
        return "needs registration with a project secret"
    if grant.confidential and not confidential:
        return "needs a confidential client"
    return None
