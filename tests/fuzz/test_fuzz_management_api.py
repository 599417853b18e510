"""Schemathesis over the published OpenAPI schema (`/api/schema`, drf-spectacular), in process.

Every operation of the management API, and the OAuth endpoints the schema describes, with an
operator API token (for `/api/v1/...`) or the project's registration secret (for `/p/{slug}/...`)
and `{slug}` pinned to a real project, so that generated requests get past authentication and
into the views. Every answer: no 5xx, errors in the JSON error shape, and nothing written by a
refused request. Budget: `tests/fuzz_support.py`.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.config import SchemathesisConfig

from dashboard.models import OperatorToken
from mcpauth_service.wsgi import application
from tests.fuzz_support import PROFILE, assert_error_shape, rows

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

# Schemathesis' coverage phase (every boundary and negative case the schema implies, hundreds of
# requests) runs in the long run only; the default run has the schema's examples and fuzzing.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": PROFILE == "fuzz"}}})
# Loaded at collection: building the schema reads no table.
schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", application, config=CONFIG)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client, keep the test's connection open across requests to the WSGI
    application (request_finished would close it, and with it the test's transaction)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def credentials(project_a, public_client_a, confidential_client_a, alice):
    return {"operator": OperatorToken.issue(alice, "fuzz")[1], "secret": project_a.registration_secret,
            "slug": project_a.slug}


@schema.parametrize()
def test_no_generated_request_gets_a_5xx_or_an_odd_error_or_writes_when_refused(case, credentials):
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = credentials["slug"]
    token = credentials["operator"] if case.path.startswith("/api/v1") else credentials["secret"]
    before = rows()

    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    response = case.call()

    assert response.status_code < 500, (case.method, case.formatted_path, response.content[:300])
    if response.status_code >= 400 and case.path != "/p/{slug}/oauth/authorize":
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
        assert_error_shape(response.status_code, content_type[0], response.content,
                           extra_keys=frozenset({"fields"}))
        assert rows() == before, (case.method, case.formatted_path)
