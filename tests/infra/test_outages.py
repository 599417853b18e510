"""Outages (docs/reliability.md): with Redis unreachable, what the database can answer keeps being
answered; what needs Redis to stay correct answers 503 `temporarily_unavailable` with `Retry-After`.

Redis is "stopped" for real here: the cache backend, with the deployment's own options, points at
a loopback port where nothing listens. (tests/e2e/test_faults.py breaks a real redis-server and the
database under a running gunicorn.)
"""

import socket
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import Client, override_settings

from dashboard.models import OperatorToken
from oauth.models import AccessToken, Application, RefreshToken
from projects.models import SigningKey
from tests.token_support import basic, introspect, make_code, post_form, redeem

pytestmark = pytest.mark.redis  # the deployment's Redis backend and options, pointed elsewhere


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused, as from a stopped server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def unreachable_redis():
    url = f"redis://127.0.0.1:{closed_port()}/0"
    with override_settings(REDIS_URL=url, CACHES={"default": {**settings.CACHES["default"], "LOCATION": url}}):
        yield


@pytest.fixture
def redis_down():
    with unreachable_redis():
        yield


def assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response.json() == {"error": "temporarily_unavailable",
                               "error_description": "The service is temporarily unavailable; retry later."}


@pytest.fixture
def issued(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    return redeem(client, public_client_a, code, verifier).json()


def test_it_serves_discovery_and_jwks_without_redis(client, project_a, redis_down):
    metadata = client.get(f"/p/{project_a.slug}/.well-known/oauth-authorization-server")
    jwks = client.get(f"/p/{project_a.slug}/.well-known/jwks.json")

    assert metadata.status_code == 200
    assert metadata.json()["issuer"] == project_a.issuer
    assert jwks.status_code == 200
    assert [k["kid"] for k in jwks.json()["keys"]] == [k.kid for k in SigningKey.objects.published(project_a)]


def test_it_answers_introspection_from_the_database_without_redis(client, project_a, public_client_a, issued,
                                                                  end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    revoked = redeem(client, public_client_a, code, verifier).json()
    post_form(client, f"/p/{project_a.slug}/oauth/revoke",
              {"token": revoked["access_token"], "client_id": public_client_a.client_id})

    with unreachable_redis():  # down after the revocation was made
        live = introspect(client, project_a, issued["access_token"], project_a.registration_secret)
        gone = introspect(client, project_a, revoked["access_token"], project_a.registration_secret)

    assert live.status_code == 200
    assert live.json()["active"] is True
    assert gone.status_code == 200
    assert gone.json() == {"active": False}


def test_it_refuses_a_revocation_it_cannot_make_immediate(client, project_a, public_client_a, issued, redis_down):
    response = post_form(client, f"/p/{project_a.slug}/oauth/revoke",
                         {"token": issued["access_token"], "client_id": public_client_a.client_id})

    # The tombstone for the cached introspection answer could not be written: nothing was revoked
    # (the client was told so), rather than a revocation a cached answer could contradict later.
    assert_unavailable(response)
    assert AccessToken.objects.filter(application=public_client_a).count() == 1
    assert RefreshToken.objects.filter(application=public_client_a, revoked__isnull=True).count() == 1


def test_it_refuses_open_registration_rather_than_run_it_without_its_rate_limit(client, project_a, redis_down):
    before = Application.objects.filter(project=project_a).count()

    response = client.post(f"/p/{project_a.slug}/api/oauth/register",
                           {"client_name": "Outage", "redirect_uris": ["https://app.example/cb"]},
                           content_type="application/json")

    assert_unavailable(response)
    assert Application.objects.filter(project=project_a).count() == before


def test_it_never_answers_500_at_the_token_endpoint_without_redis(client, project_a, confidential_client_a,
                                                                   redis_down):
    response = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    # Issued from the database, or refused with 503 if a change had to reach every worker through Redis.
    assert response.status_code in (200, 503)
    if response.status_code == 503:
        assert_unavailable(response)
    else:
        assert AccessToken.objects.filter(application=confidential_client_a).count() == 1


def test_healthz_asks_no_dependency(client, db, redis_down, django_assert_num_queries):
    # A probe arrives with the pod's address as Host: no custom-domain lookup, no session, no query.
    with django_assert_num_queries(0):
        response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_each_dependency(client, db):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_names_an_unreachable_redis(client, db, redis_down):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response.json()["failed"] == ["redis"]
    assert response.json()["checks"] == {"database": "ok", "redis": "failed"}


def test_a_dashboard_page_answers_a_plain_503(alice, project_a, redis_down):
    browser = Client(raise_request_exception=False)  # as a real server: the error handler answers
    browser.force_login(alice)

    # Rotating the signing key must reach every worker's cached project through Redis.
    response = browser.post(f"/projects/{project_a.slug}/settings/rotate-key", HTTP_ACCEPT="text/html")

    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in response.content
    assert b"Traceback" not in response.content


def test_the_management_api_answers_503_in_json(alice, project_a, redis_down):
    _, token = OperatorToken.issue(alice, "outage")
    api = Client(raise_request_exception=False)

    response = api.post(f"/api/v1/projects/{project_a.slug}/rotate-key", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_unavailable(response)


def test_a_broker_that_cannot_be_reached_counts_as_an_outage():
    """A request that queues a task (an email) while the broker is down answers 503, not 500: what
    Celery raises then is one of the outages `mcpauth_service.errors` renders."""
    from celery import Celery

    from mcpauth_service.errors import is_outage

    app = Celery("outage-probe", broker=f"redis://127.0.0.1:{closed_port()}/0")
    app.conf.broker_connection_retry = False
    app.conf.task_publish_retry = False
    try:
        with pytest.raises(Exception) as raised:
            app.send_task("projects.tasks.send_password_reset", args=(1, "a@b.example", "http://issuer"))
        assert is_outage(raised.value)
    finally:
        app.close()
