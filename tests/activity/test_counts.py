"""Activity that adds up (issue 21): known numbers of issued and refused requests through the real
endpoints, and exactly those numbers on the overview's charts and in the management API — live
(minutes not rolled up yet) and after the rollup, which is exact and idempotent."""

import json
import re
import threading

import pytest
from django.db import connection, connections

from activity import queries, record, rollup
from activity.models import Count, RolledMinute
from dashboard.models import OperatorToken
from infra import ratelimit
from tests.token_support import basic, pkce, post_form, token_url

ISSUED, INVALID_CLIENT, INVALID_GRANT, REGISTERED, RATE_LIMITED = 7, 3, 2, 2, 4
BODY = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"}


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def make_known_numbers(client, project, confidential, public) -> None:
    """7 client_credentials tokens, 3 invalid_client, 2 invalid_grant, 2 registrations and 4
    rate-limited ones (the project's limit is 2 a minute)."""
    project.rate_limits = {"register:project": ratelimit.parse_windows("2/1m")}
    project.save()
    for _ in range(ISSUED):
        assert post_form(client, token_url(project), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential)).status_code == 200
    for _ in range(INVALID_CLIENT):
        refused = post_form(client, token_url(project), {"grant_type": "client_credentials"},
                            HTTP_AUTHORIZATION=basic(confidential, "mcps_wrong"))
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    for _ in range(INVALID_GRANT):
        refused = post_form(client, token_url(project), {
            "grant_type": "authorization_code", "code": "no-such-code", "code_verifier": pkce()[0],
            "redirect_uri": public.redirect_uris.split()[0], "client_id": public.client_id})
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    statuses = [client.post(f"/p/{project.slug}/api/oauth/register", data=json.dumps(BODY),
                            content_type="application/json").status_code
                for _ in range(REGISTERED + RATE_LIMITED)]
    assert statuses == [201] * REGISTERED + [429] * RATE_LIMITED


EXPECTED_FAILURES = [
    {"endpoint": "oauth:register", "error": "rate_limited", "count": RATE_LIMITED},
    {"endpoint": "oauth:token", "error": "invalid_client", "count": INVALID_CLIENT},
    {"endpoint": "oauth:token", "error": "invalid_grant", "count": INVALID_GRANT},
]


def assert_the_known_numbers(client, project, confidential, public, token) -> None:
    for range_key in queries.RANGES:
        answer = client.get(f"/api/v1/projects/{project.slug}/activity?range={range_key}", **bearer(token))
        assert answer.status_code == 200
        body = answer.json()
        assert {key: sum(values) for key, values in body["series"].items()} == {
            "tokens": ISSUED, "authorizations": 0, "registrations": REGISTERED,
            "failures": INVALID_CLIENT + INVALID_GRANT + RATE_LIMITED}
        assert body["totals"]["issued"] == {"client_credentials": ISSUED}
        assert body["totals"]["registered"] == {"open": REGISTERED}
        assert body["failures"] == EXPECTED_FAILURES
        assert body["clients"] == [
            {"client_id": confidential.client_id, "issued": ISSUED, "refused": INVALID_CLIENT},
            {"client_id": public.client_id, "issued": 0, "refused": INVALID_GRANT}]
        assert len(body["buckets"]) == len(body["series"]["tokens"]) == queries.RANGES[range_key][0]
    page = client.get(f"/projects/{project.slug}?range=7d").content.decode()
    totals = dict(re.findall(r'data-chart="(\w+)">(\d+)<', page))
    assert totals == {"tokens": str(ISSUED), "authorizations": "0", "registrations": str(REGISTERED),
                      "failures": str(INVALID_CLIENT + INVALID_GRANT + RATE_LIMITED)}
    reasons = re.search(r'<table class="compact" id="failure-reasons">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td><code>([^<]+)</code></td><td class=\"num\">(\d+)</td>",
                      reasons)
    assert rows == [(f["endpoint"], f["error"], str(f["count"])) for f in EXPECTED_FAILURES]


def test_the_charts_show_exactly_what_was_issued_and_refused(client, alice, project_a, confidential_client_a,
                                                             public_client_a):
    make_known_numbers(client, project_a, confidential_client_a, public_client_a)
    client.force_login(alice)
    token = OperatorToken.issue(alice, "ci")[1]

    assert_the_known_numbers(client, project_a, confidential_client_a, public_client_a, token)  # live
    rollup.run(newest=record.minute_now())
    assert_the_known_numbers(client, project_a, confidential_client_a, public_client_a, token)  # from the table
    rollup.run(newest=record.minute_now())  # again: nothing added twice
    assert_the_known_numbers(client, project_a, confidential_client_a, public_client_a, token)
    assert sum(Count.objects.filter(project=project_a, kind="issued").values_list("count", flat=True)) == ISSUED


def test_another_projects_activity_is_neither_shown_nor_readable(client, alice, bob, project_a, project_b,
                                                                 confidential_client_a, confidential_client_b):
    for _ in range(2):
        post_form(client, token_url(project_b), {"grant_type": "client_credentials"},
                  HTTP_AUTHORIZATION=basic(confidential_client_b))
    token = OperatorToken.issue(alice, "ci")[1]
    mine = client.get(f"/api/v1/projects/{project_a.slug}/activity", **bearer(token)).json()
    assert sum(mine["series"]["tokens"]) == 0 and mine["clients"] == []
    theirs = client.get(f"/api/v1/projects/{project_b.slug}/activity", **bearer(token))
    assert (theirs.status_code, theirs.json()["error"]) == (404, "not_found")
    bobs = client.get(f"/api/v1/projects/{project_b.slug}/activity",
                      **bearer(OperatorToken.issue(bob, "ci")[1])).json()
    assert sum(bobs["series"]["tokens"]) == 2


def test_it_refuses_an_unknown_range(client, alice, project_a):
    answer = client.get(f"/api/v1/projects/{project_a.slug}/activity?range=1y",
                        **bearer(OperatorToken.issue(alice, "ci")[1]))
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


@pytest.mark.redis
def test_the_hot_path_writes_redis_not_the_database(client, project_a, confidential_client_a):
    post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
              HTTP_AUTHORIZATION=basic(confidential_client_a))
    assert not Count.objects.exists()  # until the rollup
    live = queries.counts(project_a, queries.buckets("24h")[0][0])
    assert list(live.values()) == [1]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_rollups_at_once_add_each_minute_once(project_a, confidential_client_a):
    for _ in range(5):
        record.record(project_a, record.ISSUED, "client_credentials", client_id=confidential_client_a.client_id)
        record.record(project_a, record.REFUSED, "invalid_client", endpoint="oauth:token")
    newest = record.minute_now()
    start = threading.Barrier(2)
    outcomes = []

    def roll() -> None:
        try:
            start.wait()
            outcomes.append(rollup.run(newest=newest)["minutes"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=roll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(outcomes) == RolledMinute.objects.count()  # each minute claimed by exactly one of the two
    assert totals(project_a) == {"issued": 5, "refused": 5}
    rollup.run(newest=newest)
    assert totals(project_a) == {"issued": 5, "refused": 5}
    connection.close()


def totals(project) -> dict[str, int]:
    found: dict[str, int] = {}
    for kind, n in Count.objects.filter(project=project).values_list("kind", "count"):
        found[kind] = found.get(kind, 0) + n
    return found


def test_the_embedded_default_counts_into_the_table_on_flush(settings, project_a, confidential_client_a):
    settings.REDIS_URL = ""
    record.record(project_a, record.ISSUED, "client_credentials", client_id=confidential_client_a.client_id)
    record.record(project_a, record.ISSUED, "client_credentials", client_id=confidential_client_a.client_id)
    assert totals(project_a) == {}  # pending in this process until written
    record.flush()
    assert totals(project_a) == {"issued": 2}
    assert rollup.run() == {"minutes": 0, "events": 0}


def test_refusals_rendered_by_oauthlib_are_counted_at_their_endpoint(client, project_a, confidential_client_a):
    refused = post_form(client, f"/p/{project_a.slug}/oauth/revoke", {"token": "whatever"},
                        HTTP_AUTHORIZATION=basic(confidential_client_a, "mcps_wrong"))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert queries.summary(project_a).failures == [{"endpoint": "oauth:revoke", "error": "invalid_client", "count": 1}]


def test_sign_ins_are_counted_by_outcome(client, project_a, public_client_a, end_user_a):
    from tests.authz import authorize_path
    from tests.conftest import PASSWORD

    signin = client.get(authorize_path(project_a, public_client_a))["Location"]
    assert client.post(signin, {"email": end_user_a.email, "password": "wrong"}).status_code == 400
    assert client.post(signin, {"email": end_user_a.email, "password": PASSWORD}).status_code == 302
    assert queries.summary(project_a).totals["signin"] == {"failed": 1, "ok": 1}


def test_an_authorization_error_sent_back_to_the_client_is_counted(client, project_a, public_client_a):
    from tests.authz import authorize_path, query_of

    refused = client.get(authorize_path(project_a, public_client_a, scope="mcp:nothing"))
    assert query_of(refused["Location"])["error"] == "invalid_scope"
    assert queries.summary(project_a).failures == [{"endpoint": "oauth:authorize", "error": "invalid_scope",
                                                    "count": 1}]


# --- pending in the process, written by one writer per process (activity/record.py) ----------------

def own_activity_keys() -> list[bytes]:
    from tests.conftest import own_redis_keys

    return own_redis_keys("*:activity:*")  # after the cache version


@pytest.mark.redis
def test_a_record_waits_in_its_process_until_flushed_in_one_write(project_a, confidential_client_a):
    for _ in range(3):
        record.record(project_a, record.ISSUED, "client_credentials", client_id=confidential_client_a.client_id)
    record.record(project_a, record.REFUSED, "invalid_client", endpoint="oauth:token")
    assert own_activity_keys() == []  # nothing written on the request

    record.flush()

    live = rollup.unrolled(record.store())
    assert [{json.loads(k)[2]: int(n) for k, n in fields.items()} for fields in live.values()] == [
        {"issued": 3, "refused": 1}]
    record.flush()  # nothing pending: nothing written twice
    assert queries.summary(project_a).totals["issued"] == {"client_credentials": 3}


@pytest.mark.redis
def test_each_process_writer_flushes_on_its_own(settings, monkeypatch, project_a):
    settings.ACTIVITY_FLUSH_SECONDS = 0.05
    monkeypatch.setattr(record, "_pending", record.Pending())  # the writer stops when this is undone
    record.record(project_a, record.ISSUED, "client_credentials")
    assert record._pending.thread is not None and record._pending.thread.daemon
    for _ in range(200):  # bounded wait on the condition, not a timed assertion
        if own_activity_keys():
            break
        threading.Event().wait(0.05)
    assert len(own_activity_keys()) == 2  # the minute's hash and the set of minutes
    assert record._pending.counts == {}


def test_a_forked_worker_does_not_write_what_its_parent_had_pending(monkeypatch, project_a):
    record.record(project_a, record.ISSUED, "client_credentials")
    parent = record._pending
    monkeypatch.setattr(parent, "pid", -1)  # as seen from a child process
    record.record(project_a, record.REFUSED, "invalid_client", endpoint="oauth:token")
    assert record._pending is not parent and record._pending.thread is None
    assert [key[2] for key in record._pending.counts] == ["refused"]


def test_an_unreachable_store_drops_what_was_pending_and_the_request_goes_on(client, monkeypatch, caplog, project_a,
                                                                               confidential_client_a):
    from redis.exceptions import ConnectionError as RedisConnectionError

    class Down:
        def write(self, counts, events):
            raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(record, "store", Down)
    monkeypatch.setattr(record, "_warned_at", [-record.WARN_EVERY])
    assert post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                     HTTP_AUTHORIZATION=basic(confidential_client_a)).status_code == 200
    record.flush()
    assert record._pending.counts == {} and "activity not counted (ConnectionError" in caplog.text


def test_pending_entries_are_bounded(monkeypatch, caplog, project_a):
    monkeypatch.setattr(record, "MAX_PENDING", 3)
    monkeypatch.setattr(record, "FLUSH_AT", 100)
    monkeypatch.setattr(record, "_warned_at", [-record.WARN_EVERY])
    for label in "abcde":
        record.record(project_a, record.REFUSED, label, endpoint="oauth:token")
    assert sorted(key[3] for key in record._pending.counts) == ["a", "b", "c"]
    assert "activity not counted (OverflowError" in caplog.text
