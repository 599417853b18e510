"""Races on real PostgreSQL: concurrent open registrations never pass the project's cap."""

import json

import pytest
from django.test import Client

from oauth.models import Application
from projects.models import AuditEvent
from tests.oauth.endpoints.test_token_races import concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BODY = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"}


def register():
    return Client().post("/p/alpha/api/oauth/register", data=json.dumps(BODY), content_type="application/json")


def test_concurrent_open_registrations_stop_exactly_at_the_cap(project_a):
    project_a.open_client_cap = 3
    project_a.save()

    responses = concurrently(8, register)

    assert sorted(r.status_code for r in responses) == [201] * 3 + [429] * 5
    assert Application.objects.filter(project=project_a, registration_path="open").count() == 3
    assert AuditEvent.objects.filter(project=project_a, kind="client.registered").count() == 3
    project_a.refresh_from_db()
    assert project_a.open_client_count == 3


def test_a_slot_freed_by_a_delete_is_taken_once_by_concurrent_registrations(project_a):
    project_a.open_client_cap = 2
    project_a.save()
    assert [register().status_code for _ in range(2)] == [201, 201]
    Application.objects.filter(project=project_a).first().delete()

    responses = concurrently(6, register)

    assert sorted(r.status_code for r in responses) == [201] + [429] * 5
    assert Application.objects.filter(project=project_a, registration_path="open").count() == 2
    project_a.refresh_from_db()
    assert project_a.open_client_count == 2
