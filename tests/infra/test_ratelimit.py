"""The one rate limiter (infra/ratelimit.py), through the registration endpoint: per client IP and per
project, 429 with Retry-After and the RateLimit header fields, per-project limits, RATE_LIMITS=off."""

import json

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from prometheus_client import REGISTRY

from infra import ratelimit
from mcpauth_service import checks
from oauth.models import Application
from projects.models import Project
from tests.conftest import own_redis_keys

URL_A = "/p/alpha/api/oauth/register"
URL_B = "/p/bravo/api/oauth/register"
BODY = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"}


def register(client, url=URL_A, ip="203.0.113.7", secret=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(url, data=json.dumps(BODY), content_type="application/json", REMOTE_ADDR=ip, **headers)


def set_limits(project: Project, **limits: str) -> None:
    """Per-project limits as an operator sets them: {"register:ip": "3/1m"} (keyword names use _ for :)."""
    project.rate_limits = {name.replace("_", ":", 1): ratelimit.parse_windows(text) for name, text in limits.items()}
    project.save()


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(django_settings.REDIS_URL)


def redis_keys(pattern: str) -> list[bytes]:
    return own_redis_keys(f"*{pattern}*")


def test_it_allows_a_generous_burst_from_one_address_by_default(client, project_a):
    # Claude and ChatGPT register from a few shared addresses.
    for _ in range(25):
        assert register(client).status_code == 201
    assert Application.objects.filter(project=project_a).count() == 25


def test_it_answers_429_with_retry_after_and_the_ratelimit_fields(client, project_a):
    set_limits(project_a, register_ip="3/1m, 100/1h")
    for _ in range(3):
        assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate_limited", "error_description": "Too many requests; retry later."}
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 61
    assert refused["RateLimit-Policy"] == '"register:ip/1m";q=3;w=60, "register:ip/1h";q=100;w=3600'
    assert refused["RateLimit"] == f'"register:ip/1m";r=0;t={retry_after}'
    assert refused["Cache-Control"] == "no-store"
    assert refused["Access-Control-Allow-Origin"] == "*"
    exposed = refused["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed and "RateLimit" in exposed and "RateLimit-Policy" in exposed
    assert Application.objects.filter(project=project_a).count() == 3


@pytest.mark.redis
def test_its_counters_live_in_redis_shared_by_every_worker(client, project_a):
    set_limits(project_a, register_ip="3/1m")
    assert register(client).status_code == 201
    assert redis_keys("ratelimit:register:ip")


def test_it_counts_each_address_on_its_own(client, project_a):
    set_limits(project_a, register_ip="1/1m")
    assert register(client, ip="203.0.113.7").status_code == 201
    assert register(client, ip="203.0.113.7").status_code == 429
    assert register(client, ip="198.51.100.9").status_code == 201


def test_it_limits_the_whole_project_across_addresses(client, project_a, project_b):
    set_limits(project_a, register_project="2/1m")
    assert register(client, ip="203.0.113.1").status_code == 201
    assert register(client, ip="203.0.113.2").status_code == 201
    refused = register(client, ip="203.0.113.3")
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert refused["RateLimit"].startswith('"register:project/1m";r=0;t=')
    assert register(client, URL_B, ip="203.0.113.4").status_code == 201  # another project has its own budget
    assert Application.objects.filter(project=project_a).count() == 2


def test_one_projects_limits_are_not_another_projects(client, project_a, project_b):
    set_limits(project_a, register_ip="1/1m")
    assert register(client, URL_A).status_code == 201
    assert register(client, URL_A).status_code == 429
    for _ in range(3):  # bravo keeps the default 60 a minute, from the same address
        assert register(client, URL_B).status_code == 201


def test_the_sustained_window_applies_even_when_the_burst_window_has_room(client, project_a):
    set_limits(project_a, register_ip="100/1m, 2/1h")
    assert register(client).status_code == 201
    assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429
    assert refused["RateLimit"] == f'"register:ip/1h";r=0;t={refused["Retry-After"]}'


def test_it_limits_before_checking_credentials(client, project_a):
    # A flood of guessed secrets is slowed down like any other flood.
    set_limits(project_a, register_ip="2/1m")
    assert register(client, secret="mcps_wrong").status_code == 401
    assert register(client, secret="mcps_wrong").status_code == 401
    assert register(client, secret=project_a.registration_secret).status_code == 429
    assert Application.objects.count() == 0


def test_it_honours_x_forwarded_for_only_behind_trusted_proxies(client, project_a, settings):
    set_limits(project_a, register_ip="1/1m")
    settings.TRUSTED_PROXY_COUNT = 0
    assert register(client, ip="10.0.0.1").status_code == 201
    spoofed = client.post(URL_A, json.dumps(BODY), content_type="application/json", REMOTE_ADDR="10.0.0.1",
                          HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert spoofed.status_code == 429  # the header is not trusted, so the address is still 10.0.0.1
    settings.TRUSTED_PROXY_COUNT = 1
    behind_proxy = client.post(URL_A, json.dumps(BODY), content_type="application/json", REMOTE_ADDR="10.0.0.1",
                               HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert behind_proxy.status_code == 201


def test_a_request_refused_for_its_address_does_not_count_against_the_project(client, project_a):
    set_limits(project_a, register_ip="1/1m", register_project="2/1m")
    assert register(client, ip="203.0.113.1").status_code == 201
    assert register(client, ip="203.0.113.1").status_code == 429  # stops at the address's window
    assert register(client, ip="203.0.113.2").status_code == 201  # so the project has counted 2
    assert register(client, ip="203.0.113.3").status_code == 429
    assert Application.objects.filter(project=project_a).count() == 2


def test_the_open_client_cap_answers_429_with_the_same_fields(client, project_a):
    Project.objects.filter(pk=project_a.pk).update(open_client_cap=1)
    project_a.forget_cached()
    assert register(client).status_code == 201
    refused = register(client)
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert refused["Retry-After"] == "3600"
    assert refused["RateLimit-Policy"] == '"open-clients";q=1'
    assert refused["RateLimit"] == '"open-clients";r=0;t=3600'


@pytest.mark.redis
def test_its_counters_expire_with_their_window(client, project_a):
    set_limits(project_a, register_ip="10/1m, 100/1h", register_project="10/1m")
    assert register(client).status_code == 201
    client_ = redis_client()
    # ratelimit:{limit}:{window seconds}:{subject}
    ttls = {key: client_.ttl(key) for key in redis_keys("ratelimit:register:")}
    windows = {key: int(key.decode().split("ratelimit:")[1].split(":")[2]) for key in ttls}
    assert sorted(windows.values()) == [60, 60, 3600]
    assert all(0 < ttls[key] <= windows[key] for key in ttls)
    assert sorted(int(client_.get(key)) for key in redis_keys("ratelimit:register:")) == [1, 1, 1]


@pytest.mark.redis
def test_it_keeps_counting_after_redis_forgot_its_script(client, project_a):
    set_limits(project_a, register_ip="2/1m")
    assert register(client).status_code == 201
    redis_client().script_flush()  # e.g. a restarted Redis
    assert register(client).status_code == 201
    assert register(client).status_code == 429


def test_rate_limits_off_lets_everything_through_and_counts_nothing(client, project_a, settings):
    settings.RATE_LIMITS_ENABLED = False
    set_limits(project_a, register_ip="1/1m", register_project="1/1m")
    for _ in range(5):
        assert register(client).status_code == 201
    assert not any("ratelimit:" in str(key) for key in (redis_keys("ratelimit:") if settings.REDIS_URL else []))


def test_a_system_check_warns_when_rate_limits_are_off(settings):
    settings.RATE_LIMITS_ENABLED = False
    [warning] = checks.check_rate_limits(None)
    assert warning.id == "mcpauth.W010" and not warning.is_serious()
    settings.RATE_LIMITS_ENABLED = True
    assert checks.check_rate_limits(None) == []


def test_the_cache_store_counts_and_forgives_like_the_redis_one(db):
    """The path without Redis (any Django cache every worker shares: add + incr)."""
    limit = ratelimit.LIMITS["signin:account"]
    windows = (ratelimit.Window(2, 60),)
    counters = [ratelimit.Counter(limit, windows[0], windows, "someone")]
    store = ratelimit.CacheStore()
    assert store.count(counters) is None
    assert store.count(counters) is None
    position, retry_after = store.count(counters)  # the third is over the limit of 2
    assert position == 0 and 1 <= retry_after <= 61
    store.forgive(counters)
    assert cache.get(counters[0].key) == 2


@pytest.mark.parametrize("text, windows", [
    ("10/15m", [[10, 900]]),
    ("600/1h, 60/60", [[60, 60], [600, 3600]]),
    (" 5 / 1d ", [[5, 86400]]),
])
def test_it_reads_limits_as_count_per_window(text, windows):
    assert ratelimit.parse_windows(text) == windows
    assert ratelimit.parse_windows(ratelimit.format_windows(windows)) == windows


@pytest.mark.parametrize("text", ["", "10", "10/", "0/1m", "10/0s", "10/8d", "1/1m, 2/1m", "1/1w", "x/1m",
                                  "1/1s,2/2s,3/3s,4/4s,5/5s", "10/15m\x00"])
def test_it_refuses_a_limit_that_is_not_one(text):
    with pytest.raises(ValueError):
        ratelimit.parse_windows(text)


def test_each_refusal_is_counted_in_the_metrics_by_limit_and_error(client, project_a):
    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (count("mcpauth_rate_limited_total", limit="register:ip"),
              count("mcpauth_oauth_errors_total", project="alpha", endpoint="oauth:register", error="rate_limited"))
    set_limits(project_a, register_ip="2/1m")
    statuses = [register(client).status_code for _ in range(5)]

    assert statuses == [201, 201, 429, 429, 429]
    assert count("mcpauth_rate_limited_total", limit="register:ip") - before[0] == 3
    assert count("mcpauth_oauth_errors_total", project="alpha", endpoint="oauth:register",
                 error="rate_limited") - before[1] == 3
