"""`/healthz` says the process is up; `/readyz` says whether the database and Redis answer."""

import pytest
from django.test import override_settings


def test_healthz_answers_ok(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_everything_answers(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


@pytest.mark.django_db
def test_readyz_names_a_stopped_redis_with_503(client):
    # A real Redis client pointed at a port where nothing listens: the stopped server, for real.
    dead = {"default": {"BACKEND": "infra.cache.RedisCache",
                        "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"CONNECTION_POOL_KWARGS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}}
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", CACHES=dead):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["redis"]
    assert response.json()["checks"]["database"] == "ok"
