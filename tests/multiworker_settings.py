"""The shipped settings with one change for tests/test_multiworker.py: a small open-registration
limit per address, so that a burst shows whether both workers count together."""

from mcpauth_service.settings import *  # noqa: F403

RATE_LIMITS = {"register:ip": [(60, 7)]}  # tests/test_multiworker.py: LIMIT
