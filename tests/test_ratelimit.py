"""Registration rate limits in Redis, per client IP and per project: 429 with Retry-After."""

import json

import pytest
from django.core.cache import cache

from oauth.models import Application

URL_A = "/p/alpha/api/oauth/register"
URL_B = "/p/bravo/api/oauth/register"
BODY = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"}


def register(client, url=URL_A, ip="203.0.113.7", secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(url, data=json.dumps(BODY), content_type="application/json", REMOTE_ADDR=ip, **headers)


def redis_keys(pattern: str) -> list[bytes]:
    return cache._cache.get_client(write=False).keys(f"*{pattern}*")


def test_it_allows_a_generous_burst_from_one_address_by_default(client, project_a):
    # Claude and ChatGPT register from a few shared addresses.
    for _ in range(25):
        assert register(client).status_code == 201
    assert Application.objects.filter(project=project_a).count() == 25


@pytest.mark.redis
def test_it_answers_429_with_retry_after_once_an_address_is_over_its_limit(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 3)]}
    for _ in range(3):
        assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in refused["Access-Control-Expose-Headers"]
    assert Application.objects.filter(project=project_a).count() == 3
    assert redis_keys("ratelimit:register:ip")  # the counters live in Redis, shared by all workers


def test_it_counts_each_address_on_its_own(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 1)]}
    assert register(client, ip="203.0.113.7").status_code == 201
    assert register(client, ip="203.0.113.7").status_code == 429
    assert register(client, ip="198.51.100.9").status_code == 201


def test_it_limits_the_whole_project_across_addresses(client, project_a, project_b, settings):
    settings.RATE_LIMITS = {"register:project": [(60, 2)]}
    assert register(client, ip="203.0.113.1").status_code == 201
    assert register(client, ip="203.0.113.2").status_code == 201
    refused = register(client, ip="203.0.113.3")
    assert refused.status_code == 429 and refused.json()["error"] == "too_many_requests"
    assert register(client, URL_B, ip="203.0.113.4").status_code == 201  # another project has its own budget
    assert Application.objects.filter(project=project_a).count() == 2


def test_the_sustained_window_applies_even_when_the_burst_window_has_room(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 100), (3600, 2)]}
    assert register(client).status_code == 201
    assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0


def test_it_limits_before_checking_credentials(client, project_a, settings):
    # A flood of guessed secrets is slowed down like any other flood.
    settings.RATE_LIMITS = {"register:ip": [(60, 2)]}
    assert register(client, secret="mcps_wrong").status_code == 401
    assert register(client, secret="mcps_wrong").status_code == 401
    assert register(client, secret=project_a.registration_secret).status_code == 429
    assert Application.objects.count() == 0


def test_it_honours_x_forwarded_for_only_behind_trusted_proxies(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 1)]}
    settings.TRUSTED_PROXY_COUNT = 0
    assert register(client, ip="10.0.0.1").status_code == 201
    spoofed = client.post(URL_A, json.dumps(BODY), content_type="application/json", REMOTE_ADDR="10.0.0.1",
                          HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert spoofed.status_code == 429  # the header is not trusted, so the address is still 10.0.0.1
    settings.TRUSTED_PROXY_COUNT = 1
    behind_proxy = client.post(URL_A, json.dumps(BODY), content_type="application/json", REMOTE_ADDR="10.0.0.1",
                               HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert behind_proxy.status_code == 201


def test_a_request_refused_for_its_address_does_not_count_against_the_project(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 1)], "register:project": [(60, 2)]}
    assert register(client, ip="203.0.113.1").status_code == 201
    assert register(client, ip="203.0.113.1").status_code == 429  # stops at the address's window
    assert register(client, ip="203.0.113.2").status_code == 201  # so the project has counted 2
    assert register(client, ip="203.0.113.3").status_code == 429
    assert Application.objects.filter(project=project_a).count() == 2


@pytest.mark.redis
def test_its_counters_expire_with_their_window(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 10), (3600, 100)], "register:project": [(60, 10)]}
    assert register(client).status_code == 201
    redis = cache._cache.get_client(write=True)
    # ratelimit:{scope}:{window seconds}:{window index}:{subject}
    ttls = {key: redis.ttl(key) for key in redis_keys("ratelimit:register:")}
    windows = {key: int(key.decode().split("ratelimit:")[1].split(":")[2]) for key in ttls}
    assert sorted(windows.values()) == [60, 60, 3600]
    assert all(0 < ttls[key] <= windows[key] + 1 for key in ttls)
    assert sorted(int(redis.get(key)) for key in redis_keys("ratelimit:register:")) == [1, 1, 1]


@pytest.mark.redis
def test_it_keeps_counting_after_redis_forgot_its_script(client, project_a, settings):
    settings.RATE_LIMITS = {"register:ip": [(60, 2)]}
    assert register(client).status_code == 201
    cache._cache.get_client(write=True).script_flush()  # e.g. a restarted Redis
    assert register(client).status_code == 201
    assert register(client).status_code == 429
