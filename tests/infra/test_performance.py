"""Performance plumbing (issue 8): the trimmed middleware stack, the in-process project tier, and the
bench harness's seeding and parsing. No timings are asserted anywhere: `make bench` measures."""

import json
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection

from bench import compare, peer, run, seed
from infra import localcache
from infra.localcache import MISS, LocalCache
from infra.middleware import is_machine_route
from projects.models import Project, local_cache
from tests.localcache_support import another_worker_holding

# --- only the middleware each route needs -------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/p/alpha/.well-known/oauth-authorization-server", "/p/alpha/.well-known/jwks.json", "/p/alpha/oauth/token",
    "/p/alpha/oauth/revoke", "/p/alpha/oauth/introspect", "/p/alpha/api/oauth/introspect",
    "/p/alpha/api/oauth/register", "/p/alpha/api/oauth/register/abc", "/.well-known/oauth-authorization-server/p/alpha",
    "/oauth/token", "/.well-known/jwks.json", "/api/oauth/token/exchange",
])
def test_it_treats_oauth_json_endpoints_as_machine_routes(path):
    assert is_machine_route(path) is True


@pytest.mark.parametrize("path", [
    "/", "/login", "/p/alpha/oauth/authorize", "/p/alpha/oauth/signin", "/p/alpha/oauth/consent",
    "/p/alpha/oauth/tokens", "/p/alpha/oauth/token/", "/projects/alpha", "/oauth/authorize", "/static/x.css",
])
def test_it_keeps_the_browser_stack_for_pages(path):
    assert is_machine_route(path) is False


def test_it_serves_metadata_without_session_csrf_or_framing_headers(client, project_a):
    response = client.get("/p/alpha/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    assert response.json()["issuer"] == "http://127.0.0.1:8000/p/alpha"
    assert "X-Frame-Options" not in response
    assert not response.cookies


def test_it_still_protects_the_operator_sign_in_form_against_csrf(db):
    strict = Client(enforce_csrf_checks=True)

    page = strict.get("/login", follow=True)
    refused = strict.post(page.request["PATH_INFO"], {"username": "a@example.com", "password": "x"})

    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in page
    assert refused.status_code == 403


# --- projects kept in process ------------------------------------------------------------------------------


@pytest.mark.redis  # in the embedded default, reading the generation is itself a query
def test_it_serves_a_project_from_process_memory_after_the_first_read(project_a):
    first = Project.objects.cached_by_slug("alpha")

    with CaptureQueriesContext(connection) as queries:
        second = Project.objects.cached_by_slug("alpha")

    assert first.pk == second.pk == project_a.pk
    assert first is not second  # each caller gets its own instance
    assert queries.captured_queries == []


def test_it_forgets_a_saved_project_at_once(project_a):
    Project.objects.cached_by_slug("alpha")

    project_a.name = "Renamed"
    project_a.save()

    assert Project.objects.cached_by_slug("alpha").name == "Renamed"


def test_it_retires_what_other_processes_keep_at_once(project_a):
    key = Project.cache_key_slug("alpha")
    other = another_worker_holding(key)
    assert other.get(key) == "stale"

    project_a.forget_cached()

    assert other.get(key) is MISS  # no broadcast to wait for: the shared generation moved on


def test_it_does_not_serve_a_value_read_before_a_forget(db):
    memo = LocalCache(ttl=60)
    read_at = memo.now()
    localcache.bump()  # a change commits while the value was being read

    memo.put("k", "old", read_at)

    assert memo.get("k") is MISS


def test_it_reads_the_generation_once_per_request(db):
    memo = LocalCache(ttl=60)
    request_started.send(sender=None)
    try:
        memo.put("k", "kept", memo.now())
        cache.set(localcache.GENERATION_KEY, 7, timeout=None)  # another worker's change, mid-request

        assert memo.get("k") == "kept"  # this request began before that change was answered
    finally:
        request_finished.send(sender=None)
    assert memo.get("k") is MISS  # the next request sees it


def test_it_never_revives_an_old_generation_when_the_number_is_lost(db):
    memo = LocalCache(ttl=60)
    memo.put("k", "old", memo.now())

    cache.delete(localcache.GENERATION_KEY)  # a flushed or restarted Redis

    assert memo.get("k") is MISS
    assert localcache.generation() is not None


@pytest.mark.redis
def test_it_forgets_unknown_slugs_once_they_exist(alice):
    assert Project.objects.cached_by_slug("late") is None

    Project.objects.create_project(owner=alice, name="Late", slug="late")

    assert Project.objects.cached_by_slug("late").slug == "late"
    assert local_cache.get(Project.cache_key_slug("late")) is not MISS


# --- bytes in Redis without pickling (infra.cache) -------------------------------------------------


@pytest.mark.redis
def test_it_keeps_bytes_unchanged_under_the_prefixed_key():
    cache.set_many_bytes(["raw:a", "raw:b"], b"1 2 {}", 60)

    cache.add_bytes("raw:a", b"other", 60)  # only when absent
    cache.add_bytes("raw:c", b"3", 60)

    assert [cache.get_bytes(k) for k in ("raw:a", "raw:b", "raw:c", "raw:d")] == [b"1 2 {}", b"1 2 {}", b"3", None]
    assert get_redis_connection().ttl(cache.make_key("raw:a")) > 0


@pytest.mark.redis
def test_it_reconnects_when_its_connection_was_dropped():
    cache.set_many_bytes(["raw:a"], b"x", 60)
    before = _client_id(cache._connection())
    get_redis_connection().client_kill_filter(_id=before)  # as a Redis restart or idle timeout would

    assert cache.get_bytes("raw:a") == b"x"
    assert _client_id(cache._connection()) != before


def _client_id(connection) -> int:
    connection.send_command("CLIENT", "ID")
    return connection.read_response()


# --- the bench harness --------------------------------------------------------------------------------------


def test_it_parses_the_line_the_lua_scripts_print():
    output = "Running 12s test\nBENCH_RESULT " + json.dumps({
        "requests": 1200, "duration_us": 12_000_000, "bytes": 1, "expect": 200, "bad_body": 0, "exhausted": False,
        "latency_us": {"p50": 1500, "p90": 2500, "p99": 9000, "max": 20000, "mean": 1700.5},
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 3, "timeout": 0},
        "statuses": {"200": 1197, "500": 3},
    }) + "\n"

    result = run.summarize(run.parse_wrk_output(output), 200)

    assert result["rps"] == 100.0
    assert (result["p50_ms"], result["p99_ms"]) == (1.5, 9.0)
    assert result["unexpected"] == 3
    assert result["valid"] is True  # 0.25 % unexpected: within the 1 % the harness tolerates


def test_it_marks_a_run_with_wrong_answers_invalid():
    raw = {"requests": 100, "duration_us": 1_000_000, "bad_body": 0, "exhausted": False,
           "latency_us": {"p50": 1, "p90": 1, "p99": 1, "max": 1, "mean": 1},
           "errors": {"connect": 0, "read": 0, "write": 0, "status": 100, "timeout": 0}, "statuses": {"401": 100}}

    assert run.summarize(raw, 200)["valid"] is False
    with pytest.raises(ValueError):
        run.parse_wrk_output("wrk: connection refused\n")


def test_it_computes_ratios_to_the_mean_hello_run():
    ok = {"valid": True}
    report = run.with_ratios({"hello": {"rps": 1000.0, **ok}, "discovery": {"rps": 950.0, **ok},
                              "register": {"rps": 200.0, **ok}, "hello#2": {"rps": 1000.0, **ok},
                              "refresh": {"skipped": "endpoint not available yet (404)"}})

    assert report["ceiling_rps"] == 1000.0
    assert report["scenarios"]["discovery"]["target_met"] is True
    assert report["scenarios"]["register"]["ratio"] == 0.2
    assert report["scenarios"]["register"]["target_met"] is False
    assert "ratio" not in report["scenarios"]["refresh"]


def test_it_takes_the_median_of_the_per_round_ratios_to_the_peer():
    def run_of(rps, p99):
        return {"valid": True, "rps": rps, "p50_ms": 1.0, "p99_ms": p99}

    rounds = [{"hello": {"rps": 1000.0}, "endpoints": {"refresh": compare.with_ratio(
        {"ours": run_of(ours, 10.0), "peer": run_of(peer, p99)}, 1000.0)}}
        for ours, peer, p99 in [(300.0, 1000.0, 10.0), (600.0, 1000.0, 4.0), (500.0, 1000.0, 10.0)]]

    row = compare.summary(rounds, ["refresh"])["refresh"]

    assert row["ratios"] == [0.3, 0.6, 0.5]
    assert row["ratio"] == 0.5
    assert row["target_met"] is True  # refresh: ≥ 0.5
    assert row["p99_factors"] == [1.0, 2.5, 1.0]
    assert row["p99_met"] is True  # the median factor, 1.0, is within 2
    assert row["ours_to_hello"] == 0.5


def test_it_leaves_out_a_round_where_either_side_was_invalid():
    pair = compare.with_ratio({"ours": {"valid": True, "rps": 10.0, "p50_ms": 1.0, "p99_ms": 1.0},
                               "peer": {"valid": False, "rps": 10.0, "p50_ms": 1.0, "p99_ms": 1.0}}, 100.0)

    assert "ratio" not in pair
    assert compare.summary([{"hello": {"rps": 100.0}, "endpoints": {"jwks": pair}}], ["jwks"])["jwks"]["ratio"] is None


def test_it_mixes_mostly_introspection_some_refreshes_and_a_few_registrations():
    side = compare.Side("peer", 1, "", peer.PATHS, lambda name, pool: [])
    refresh = [[f"rt{i}", "pub"] for i in range(compare.refreshes_for(200))]

    lines = compare.mixed_lines(side, 200, [["Basic x", "at1"], ["Basic x", "at2"]], refresh)
    paths = [line[1] for line in lines]

    assert paths.count("/token/introspection") == 160
    assert paths.count("/token") == 30
    assert paths.count("/reg") == 10
    spent = [line[4] for line in lines if line[1] == "/token"]
    assert len(set(spent)) == len(spent)  # every refresh token once


def test_it_round_trips_value_files(tmp_path):
    path = tmp_path / "values.tsv"

    seed.write_values(path, [["Basic abc", "tok1"], ["Basic def", "tok2"]])

    assert seed.read_values(path) == [["Basic abc", "tok1"], ["Basic def", "tok2"]]
    with pytest.raises(ValueError):
        seed.write_values(path, [["a\tb"]])


@pytest.fixture
def world(db):
    return seed.create_world(slug="benchy", cc_clients=2)


def form(client, path, data, **headers):
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in data.items())
    return client.post(path, body, content_type="application/x-www-form-urlencoded", **headers)


@pytest.mark.postgres
def test_it_seeds_client_credentials_clients_the_token_endpoint_accepts(client, world):
    response = form(client, "/p/benchy/oauth/token", {"grant_type": "client_credentials"},
                    HTTP_AUTHORIZATION=world.cc_clients[0].basic)

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.postgres
def test_it_seeds_access_tokens_introspection_knows(client, world):
    token, = seed.access_tokens(world, 1, world.cc_clients[1])

    response = form(client, "/p/benchy/oauth/introspect", {"token": token},
                    HTTP_AUTHORIZATION=f"Bearer {world.introspect_secret}")

    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["client_id"] == world.cc_clients[1].client_id


@pytest.mark.postgres
def test_it_seeds_codes_that_redeem_with_their_verifier(client, world):
    (code, verifier), = seed.authorization_codes(world, 1)

    response = form(client, "/p/benchy/oauth/token", {
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": seed.REDIRECT_URI, "client_id": world.public_client.client_id})

    assert response.status_code == 200
    assert set(response.json()) >= {"access_token", "refresh_token"}


@pytest.mark.postgres
def test_it_seeds_refresh_tokens_that_rotate(client, world):
    refresh, = seed.refresh_tokens(world, 1)

    response = form(client, "/p/benchy/oauth/token", {
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": world.public_client.client_id})

    assert response.status_code == 200
    assert response.json()["refresh_token"] != refresh


@pytest.mark.postgres
def test_it_seeds_tokens_their_client_can_revoke(client, world):
    from oauth.models import AccessToken

    token, = seed.access_tokens(world, 1, world.revoke_client)

    response = form(client, "/p/benchy/oauth/revoke", {"token": token}, HTTP_AUTHORIZATION=world.revoke_client.basic)

    assert response.status_code == 200
    assert not AccessToken.objects.filter(token_checksum=seed.token_checksum(token)).exists()


@pytest.mark.postgres
def test_it_bulk_loads_background_clients_and_tokens(world):
    from oauth.models import AccessToken, Application

    clients = seed.background_clients(world, 30)
    loaded = seed.background_tokens(world, 90, clients, batch=40)

    assert len(clients) == 30
    assert loaded == 90
    # The seed's own clients have random ids, which may also start with "bg": count by id pattern.
    assert Application.objects.filter(project_id=world.project_pk, client_id__regex=r"^bg[0-9]{7}[0-9a-f]{16}$").count() == 30
    assert AccessToken.objects.filter(application_id__in=clients).count() == 90


# --- the Redis cache backend -----------------------------------------------------------------------------


def test_it_reuses_one_redis_client_per_process_and_still_caches(settings):
    from django.core.cache import cache as default_cache

    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("runs against the Redis cache (REDIS_URL)")
    client = get_redis_connection()

    default_cache.set("perf:probe", {"n": 1}, 30)

    assert get_redis_connection() is client
    assert get_redis_connection(write=False) is client
    assert default_cache.get("perf:probe") == {"n": 1}
    assert default_cache.add("perf:count", 0, 30) is True
    assert default_cache.incr("perf:count") == 1
