"""Discovery and JWKS answered again from their finished bytes (infra.documents), never stale.

Requests go through the WSGI application the server runs (`mcpauth_service.wsgi.application`), with
PostgreSQL and Redis; a second `DocumentCache` around the same Django application stands for a
second worker process (its own memory, the same shared generation). Whether Django answered is
seen by its `request_started` signal.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from prometheus_client import REGISTRY

from infra.documents import DocumentCache
from mcpauth_service.wsgi import application, django_application
from projects.models import SigningKey
from tests.infra.test_outages import unreachable_redis

DISCOVERY = "/p/alpha/.well-known/oauth-authorization-server"
JWKS = "/p/alpha/.well-known/jwks.json"


@pytest.fixture(autouse=True)
def _empty_documents():
    # As Django's test client does: the test's transaction keeps its connection across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    application.clear()
    yield
    application.clear()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def django_answers():
    answered: list[str] = []

    def count(sender, environ=None, **kwargs):
        answered.append(environ["PATH_INFO"] if environ else "")

    request_started.connect(count, dispatch_uid="test_documents")
    yield answered
    request_started.disconnect(dispatch_uid="test_documents")


def environ(path: str, method: str = "GET", host: str = "testserver", **extra: str) -> dict:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SCRIPT_NAME": "",
            "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": host, "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0), **extra}


def get(app, path: str, **kwargs) -> tuple[str, dict[str, str], bytes]:
    answer: list = []
    chunks = app(environ(path, **kwargs), lambda status, headers, exc_info=None: answer.extend([status, headers]))
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer[0], dict(answer[1]), body


def without_request_id(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "X-Request-Id"}


@pytest.mark.parametrize("path", [DISCOVERY, JWKS])
def test_it_answers_the_same_get_again_without_django_with_the_same_answer(project_a, django_answers, path):
    first = get(application, path)
    second = get(application, path)

    assert django_answers == [path]
    assert first[0] == second[0] == "200 OK"
    assert second[2] == first[2]
    assert without_request_id(second[1]) == without_request_id(first[1])
    assert second[1]["Access-Control-Allow-Origin"] == "*"  # CORS and security headers are kept
    assert second[1]["X-Content-Type-Options"] == "nosniff"
    assert second[1]["X-Request-Id"] != first[1]["X-Request-Id"]


def test_each_answer_has_its_own_request_id_or_the_callers(project_a):
    get(application, DISCOVERY)
    assert get(application, DISCOVERY, HTTP_X_REQUEST_ID="trace-42")[1]["X-Request-Id"] == "trace-42"
    assert get(application, DISCOVERY, HTTP_X_REQUEST_ID="bad id!")[1]["X-Request-Id"] != "bad id!"


def test_each_kept_answer_is_counted_under_its_route(project_a):
    def count() -> float:
        return REGISTRY.get_sample_value("mcpauth_http_requests_total",
                                         {"endpoint": "oauth:metadata", "status": "200"}) or 0.0

    get(application, DISCOVERY)
    before = count()
    for _ in range(3):
        get(application, DISCOVERY)
    assert count() == before + 3


def test_a_settings_change_is_served_by_every_worker_at_once(project_a, django_answers):
    other_worker = DocumentCache(django_application)
    for app in (application, other_worker):
        assert b'"client_id_metadata_document_supported": true' in get(app, DISCOVERY)[2]

    project_a.cimd_enabled = False
    project_a.save()

    for app in (application, other_worker):
        assert b'"client_id_metadata_document_supported": false' in get(app, DISCOVERY)[2]


def test_a_rotated_key_is_published_by_every_worker_at_once(project_a):
    other_worker = DocumentCache(django_application)
    for app in (application, other_worker):
        get(app, JWKS)

    new = project_a.rotate_signing_key().kid

    for app in (application, other_worker):
        assert new.encode() in get(app, JWKS)[2]


def test_a_key_made_on_first_use_of_an_algorithm_is_published_at_once(project_a):
    project_a.openid = True
    project_a.save()
    get(application, JWKS)
    SigningKey.objects.filter(project=project_a, alg="RS256").delete()
    assert b'"RS256"' not in get(application, JWKS)[2]

    rs256 = SigningKey.current(project_a, "RS256").kid  # made here, on first use

    assert rs256.encode() in get(application, JWKS)[2]


def test_a_custom_domain_gets_its_own_document(project_a):
    project_a.custom_domain = "auth.alpha.example"
    project_a.save()
    get(application, DISCOVERY)
    root = get(application, "/.well-known/oauth-authorization-server", host="auth.alpha.example")
    path_form = get(application, DISCOVERY)

    assert json.loads(root[2])["issuer"] == "https://auth.alpha.example"
    assert json.loads(path_form[2])["issuer"].endswith("/p/alpha")


@pytest.mark.parametrize("extra", [{"QUERY_STRING": "x=1"}, {"HTTP_AUTHORIZATION": "Bearer x"},
                                   {"CONTENT_LENGTH": "2"}, {"method": "HEAD"}, {"method": "OPTIONS"}])
def test_a_request_that_is_not_a_plain_get_goes_to_django(project_a, django_answers, extra):
    get(application, DISCOVERY)
    get(application, DISCOVERY, **extra)
    assert django_answers == [DISCOVERY, DISCOVERY]


def test_an_error_is_never_kept(project_a, django_answers):
    get(application, "/p/nobody/.well-known/oauth-authorization-server")
    status, _, _ = get(application, "/p/nobody/.well-known/oauth-authorization-server")
    assert status.startswith("404")
    assert len(django_answers) == 2


def test_a_route_that_does_not_ask_is_never_kept(project_a, django_answers):
    get(application, "/healthz")
    get(application, "/healthz")
    assert django_answers == ["/healthz", "/healthz"]


def test_nothing_is_served_from_memory_while_the_shared_generation_cannot_be_read(project_a, django_answers):
    get(application, DISCOVERY)
    with unreachable_redis():
        get(application, DISCOVERY)
        get(application, DISCOVERY)
    assert django_answers == [DISCOVERY] * 3


def test_a_kept_answer_is_not_served_after_its_bound(project_a, django_answers):
    get(application, JWKS)
    [(key, kept)] = list(application._kept.items())
    application._kept[key] = dataclasses.replace(kept, expires=kept.expires - 3600)
    get(application, JWKS)
    assert django_answers == [JWKS, JWKS]


def test_a_kept_answer_is_logged_with_the_same_fields_in_the_same_order(project_a, caplog):
    caplog.set_level(logging.INFO, logger="mcpauth.request")
    _, django_headers, _ = get(application, DISCOVERY)
    _, kept_headers, _ = get(application, DISCOVERY, HTTP_X_REQUEST_ID="trace-7")

    by_django, from_memory = [r.msg for r in caplog.records if r.name == "mcpauth.request"]
    assert list(from_memory) == list(by_django)
    assert by_django["request_id"] == django_headers["X-Request-Id"]
    assert from_memory["request_id"] == kept_headers["X-Request-Id"] == "trace-7"
    assert {k: from_memory[k] for k in ("method", "path", "endpoint", "status", "project", "client_id", "error")} == {
        "method": "GET", "path": DISCOVERY, "endpoint": "oauth:metadata", "status": 200, "project": "alpha",
        "client_id": None, "error": None}
