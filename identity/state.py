"""The upstream round trip's `state`: random, single use, short-lived, kept server side.

The value sent upstream is random (RFC 6749 §10.12); what it stands for (the project, the provider,
our pending authorization request, the PKCE verifier and the nonce) is kept in the shared cache
under its digest, never in the browser, so the callback finds our pending request even in an
embedded webview that lost its cookies. Taking it deletes it: a replayed `state` finds nothing.
"""

import hashlib
import secrets
from dataclasses import asdict, dataclass

from django.core.cache import cache

from identity.providers.base import Leg

LIFETIME_SECONDS = 600  # our pending authorization request lives 10 minutes too


@dataclass
class Round:
    """What one `state` stands for."""

    project_id: int
    provider_id: int
    nonce: str
    code_verifier: str
    authorization_id: str = ""  # our pending AuthorizationRequest
    tester_id: int = 0  # an operator's "Test sign-in" from the dashboard (no end user is made)

    def leg(self, state: str) -> Leg:
        return Leg(state=state, nonce=self.nonce, code_verifier=self.code_verifier)


def _key(state: str) -> str:
    return "identity:state:" + hashlib.sha256(state.encode()).hexdigest()


def begin(project_id: int, provider_id: int, *, authorization_id: str = "", tester_id: int = 0) -> tuple[str, Round]:
    state = secrets.token_urlsafe(32)
    kept = Round(project_id=project_id, provider_id=provider_id, nonce=secrets.token_urlsafe(32),
                 code_verifier=secrets.token_urlsafe(64), authorization_id=authorization_id, tester_id=tester_id)
    cache.set(_key(state), asdict(kept), LIFETIME_SECONDS)
    return state, kept


def take(state: str | None) -> Round | None:
    """The round `state` stands for, once: the first taker deletes it; a replay, or an unknown or
    expired state, gets None."""
    if not state or len(state) > 200:
        return None
    key = _key(state)
    kept = cache.get(key)
    if kept is None or not cache.delete(key):  # delete says whether this caller removed it
        return None
    return Round(**kept)


def keep_test_result(kept: Round, result: dict) -> str:
    """An operator's test sign-in's outcome, for the dashboard to show them (and nobody else) once."""
    key = secrets.token_urlsafe(24)
    cache.set("identity:tested:" + key, {"tester_id": kept.tester_id, "provider_id": kept.provider_id, **result},
              LIFETIME_SECONDS)
    return key


def test_result(key: str, *, tester_id: int, provider_id: int) -> dict | None:
    if not key or len(key) > 100:
        return None
    result = cache.get("identity:tested:" + key)
    if not result or result["tester_id"] != tester_id or result["provider_id"] != provider_id:
        return None
    return result
