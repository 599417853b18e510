"""Clients kept in process (oauth.clients.lookup): a hot client costs no query, and any change to it, or its
removal, is seen at once by every process. With Redis: in the embedded default reading the shared
generation is itself a query, so "no query" is asserted there only."""


import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from infra.localcache import MISS
from oauth.clients import lookup as clients
from oauth.models import Application
from oauth.tokens import issue as tokens
from oauth.tokens import reaper
from projects.models import local_cache
from tests.localcache_support import another_worker_holding
from tests.token_support import basic, post_form, token_url

pytestmark = pytest.mark.redis


def test_it_serves_a_client_from_process_memory_after_the_first_read(project_a, public_client_a):
    clients.load_client(project_a, public_client_a.client_id)

    with CaptureQueriesContext(connection) as queries:
        again = clients.load_client(project_a, public_client_a.client_id)

    assert again.pk == public_client_a.pk
    assert queries.captured_queries == []


def test_each_caller_gets_its_own_instance(project_a, public_client_a):
    first = clients.load_client(project_a, public_client_a.client_id)
    first.name = "Changed in memory only"

    second = clients.load_client(project_a, public_client_a.client_id)

    assert second is not first
    assert second.name == "Public MCP client"


def test_the_client_comes_with_the_callers_project(project_a, public_client_a):
    found = clients.load_client(project_a, public_client_a.client_id)

    with CaptureQueriesContext(connection) as queries:
        assert found.project.slug == "alpha"

    assert queries.captured_queries == []


def test_a_client_id_is_looked_up_in_its_own_project_only(project_a, project_b, public_client_a):
    twin = Application.objects.create(project=project_b, client_id=public_client_a.client_id, name="Twin",
                                      client_type=Application.CLIENT_PUBLIC, redirect_uris="http://127.0.0.1/cb",
                                      authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE)
    clients.load_client(project_a, public_client_a.client_id)

    in_b = clients.load_client(project_b, public_client_a.client_id)

    assert in_b.pk == twin.pk
    assert clients.load_client(project_a, public_client_a.client_id).pk == public_client_a.pk


def test_unknown_client_ids_are_not_kept(project_a):
    assert clients.load_client(project_a, "no-such-client") is None

    assert local_cache.get(clients.cache_key(project_a.pk, "no-such-client")) is MISS


def test_a_disabled_client_is_refused_at_once(client, project_a, confidential_client_a):
    assert post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                     HTTP_AUTHORIZATION=basic(confidential_client_a)).status_code == 200

    confidential_client_a.disabled_at = timezone.now()
    confidential_client_a.save(update_fields=["disabled_at"])
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_client_deleted_by_a_queryset_is_refused_at_once(project_a, public_client_a):
    clients.load_client(project_a, public_client_a.client_id)

    Application.objects.filter(pk=public_client_a.pk).delete()  # the reaper deletes this way

    assert clients.load_client(project_a, public_client_a.client_id) is None
    assert not Application.objects.filter(pk=public_client_a.pk).exists()


def test_a_reaped_client_is_refused_at_once(project_a, public_client_a):
    project_a.unused_client_days = 1
    project_a.save()
    Application.objects.filter(pk=public_client_a.pk).update(created=timezone.now() - timezone.timedelta(days=2))
    clients.load_client(project_a, public_client_a.client_id)

    assert reaper.reap_clients(project_a, timezone.now()) == [public_client_a.client_id]

    assert clients.load_client(project_a, public_client_a.client_id) is None


def test_a_rotated_secret_is_required_at_once(client, project_a, confidential_client_a):
    old = {"HTTP_AUTHORIZATION": basic(confidential_client_a)}
    assert post_form(client, token_url(project_a), {"grant_type": "client_credentials"}, **old).status_code == 200

    confidential_client_a.client_secret = "mcpcs_" + "n" * 40
    confidential_client_a.save()
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"}, **old)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_touching_a_client_refreshes_its_copy(project_a, public_client_a):
    kept = clients.load_client(project_a, public_client_a.client_id)
    assert kept.last_used_at is None

    tokens.touch_client(kept)

    assert clients.load_client(project_a, public_client_a.client_id).last_used_at is not None
    assert Application.objects.get(pk=public_client_a.pk).last_used_at is not None


def test_a_saved_client_is_forgotten_in_other_processes(project_a, public_client_a):
    key = clients.cache_key(project_a.pk, public_client_a.client_id)
    other = another_worker_holding(key)

    public_client_a.name = "Renamed"
    public_client_a.save()

    assert other.get(key) is MISS
