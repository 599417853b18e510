"""The upstream leg (RFC 6749 §4.1 as a client, OpenID Connect Core §3.1, RFC 7636, RFC 9207), for
oauth.endpoints.upstream: `start` sends the person to the provider, `finish` reads what came back.

Each step is a named check; any failure is an `UpstreamFailed` with a code the sign-in page turns
into words (`cancelled`, `expired`, `failed`) and a private reason for the logs.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from authlib.oauth2 import OAuth2Error

from identity import state as states
from identity.http import UpstreamError
from identity.models import IdentityProvider, callback_url
from identity.providers import Profile, UpstreamRefused, provider_for
from projects.models import Project

logger = logging.getLogger("mcpauth.identity")


class UpstreamFailed(Exception):
    """The round trip did not sign anyone in. `code` is for the page; the message for logs only.
    `round` is what the state stood for, when it was valid (to return to our pending request)."""

    def __init__(self, code: str, reason: str, round: states.Round | None = None):
        super().__init__(reason)
        self.code, self.round = code, round


@dataclass
class Outcome:
    round: states.Round
    provider: IdentityProvider
    profile: Profile


def start(row: IdentityProvider, *, authorization_id: str = "", tester_id: int = 0) -> str:
    """The provider's authorization URL for a new round bound to our pending request (or an operator's test)."""
    state, kept = states.begin(row.project_id, row.pk, authorization_id=authorization_id, tester_id=tester_id)
    try:
        return provider_for(row).authorization_url(kept.leg(state), callback_url(row.project))
    except (UpstreamError, UpstreamRefused, OAuth2Error) as exc:
        states.take(state)
        raise UpstreamFailed("failed", f"{row.kind} {row.pk}: {exc}") from None


def finish(project: Project, query: Mapping[str, str]) -> Outcome:
    kept = take_state(project, query.get("state"))
    row = provider_of(project, kept)
    try:
        check_error(query, kept)
        provider = provider_for(row)
        provider.check_issuer_parameter(query.get("iss"))
        code = query.get("code")
        if not code:
            raise UpstreamRefused("the authorization response has no code")
        leg = kept.leg(query["state"])
        token = provider.fetch_token(code, leg, callback_url(project))
        return Outcome(kept, row, provider.profile(token, leg))
    except (UpstreamError, UpstreamRefused, OAuth2Error, ValueError, KeyError, TypeError) as exc:
        raise UpstreamFailed("failed", f"{row.kind} {row.pk}: {exc.__class__.__name__}: {exc}", kept) from None


def take_state(project: Project, value: str | None) -> states.Round:
    """Single use: a replayed, unknown, expired or other project's state is refused."""
    kept = states.take(value)
    if kept is None:
        raise UpstreamFailed("expired", "unknown, spent or expired state")
    if kept.project_id != project.pk:
        raise UpstreamFailed("expired", f"state of project {kept.project_id} at project {project.pk}")
    return kept


def provider_of(project: Project, kept: states.Round) -> IdentityProvider:
    rows = IdentityProvider.objects.filter(project=project, pk=kept.provider_id)
    row = (rows if kept.tester_id else rows.filter(enabled=True)).first()  # an operator may test one still off
    if row is None:
        raise UpstreamFailed("failed", f"provider {kept.provider_id} is gone or off", kept)
    return row


def check_error(query: Mapping[str, str], kept: states.Round) -> None:
    """RFC 6749 §4.1.2.1: the upstream's own error; `access_denied` is the person saying no."""
    error = query.get("error")
    if error == "access_denied":
        raise UpstreamFailed("cancelled", "the person cancelled upstream", kept)
    if error:
        raise UpstreamFailed("failed", f"upstream error {error[:100]!r}", kept)
