"""What the fuzz tests share: hypothesis profiles, the row counts, and the RFC error shape.

Profiles (`HYPOTHESIS_PROFILE`): `ci` (the default, what `make test` runs: a few examples per
endpoint, derandomized so a CI run is reproducible) and `fuzz` (`make fuzz`: many more, random,
failures remembered in `.hypothesis/`). No deadline: the machine is shared, and timing is not
what these tests assert.
"""

import os

from hypothesis import HealthCheck, settings

from oauth.models import AccessToken, Application, AuthorizationRequest, Grant, RefreshToken
from projects.models import AuditEvent, Project, ProjectSecret, SigningKey, User

_RELAXED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
            HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")), deadline=None,
                          derandomize=True, database=None, suppress_health_check=_RELAXED)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")), deadline=None,
                          suppress_health_check=_RELAXED)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

TABLES = (AccessToken, RefreshToken, Grant, Application, User, AuditEvent, Project, ProjectSecret, SigningKey,
          AuthorizationRequest)
# oauthlib returns a request's `state` with its errors (found by `make fuzz` at /oauth/revoke): the
# client's own value, not a secret; RFC 6749 §5.2 lets clients ignore members they do not know.
OAUTH_ERROR_KEYS = {"error", "error_description", "error_uri", "state"}


def rows() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def assert_error_shape(status: int, content_type: str, body: bytes, *, extra_keys: frozenset[str] = frozenset()):
    """RFC 6749 §5.2 / RFC 6750 §3: `{"error": code, "error_description"?: text}`, as JSON."""
    import json

    assert content_type.startswith("application/json"), (status, content_type, body[:200])
    decoded = json.loads(body)
    assert isinstance(decoded, dict) and isinstance(decoded.get("error"), str) and decoded["error"], decoded
    assert set(decoded) <= OAUTH_ERROR_KEYS | extra_keys, decoded
    assert all(isinstance(decoded[k], str) for k in ("error_description", "error_uri") if k in decoded), decoded
