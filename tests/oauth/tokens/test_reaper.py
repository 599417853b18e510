"""The reaper (Celery beat task): unused and idle open/CIMD clients go, never one with a live code
or token; expired codes and tokens are purged; each run that did something is audited."""

import json
import secrets
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from mcpauth_service.celery import app as celery_app
from oauth import tasks
from oauth.models import AccessToken, Application, AuthorizationRequest, Grant, RefreshToken
from oauth.tokens import reaper
from projects.models import AuditEvent, Project
from tests.token_support import make_code, redeem

DAY = timedelta(days=1)


def make_client(project, path="open", age=DAY * 8, last_used=None, name="Client"):
    client = Application.objects.create(
        project=project, name=name, client_type="public", authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1/callback", registration_path=path,
        metadata={"grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"},
    )
    Application.objects.filter(pk=client.pk).update(created=timezone.now() - age, last_used_at=last_used)
    return client


def access_token(client, user, expires_in, created_ago=timedelta(0)):
    token = AccessToken.objects.create(application=client, user=user, token="", scope="mcp:tools",
                                       token_checksum=secrets.token_hex(32),
                                       expires=timezone.now() + timedelta(seconds=expires_in))
    AccessToken.objects.filter(pk=token.pk).update(created=timezone.now() - created_ago)
    return token


def refresh_token(client, user, access, revoked_ago=None, created_ago=timedelta(0)):
    token = RefreshToken.objects.create(application=client, user=user, token="", access_token=access,
                                        token_checksum=secrets.token_hex(32))
    RefreshToken.objects.filter(pk=token.pk).update(
        created=timezone.now() - created_ago,
        revoked=timezone.now() - revoked_ago if revoked_ago is not None else None)
    return token


def exists(client) -> bool:
    return Application.objects.filter(pk=client.pk).exists()


def test_it_deletes_open_clients_never_used_within_the_unused_window(project_a):
    doomed = make_client(project_a, age=DAY * 8)
    young = make_client(project_a, age=DAY * 3)
    reaper.run()
    assert not exists(doomed)
    assert exists(young)
    event = AuditEvent.objects.get(project=project_a, kind="reaper.run")
    assert event.detail["client_ids"] == [doomed.client_id]
    assert event.detail["clients_deleted"] == 1
    assert event.actor == "reaper"


def test_it_deletes_idle_clients_and_keeps_recently_used_ones(project_a):
    idle = make_client(project_a, age=DAY * 400, last_used=timezone.now() - DAY * 91)
    active = make_client(project_a, age=DAY * 400, last_used=timezone.now() - DAY * 30)
    reaper.run()
    assert not exists(idle)
    assert exists(active)


def test_it_deletes_unused_cimd_clients_too(project_a):
    cimd = make_client(project_a, path="cimd", age=DAY * 8)
    reaper.run()
    assert not exists(cimd)


@pytest.mark.parametrize("path", ["secret", "dashboard"])
def test_it_never_deletes_clients_registered_with_a_secret_or_in_the_dashboard(project_a, path):
    kept = make_client(project_a, path=path, age=DAY * 400)
    reaper.run()
    assert exists(kept)


def test_it_spares_a_client_with_a_live_access_token(project_a, end_user_a):
    client = make_client(project_a, age=DAY * 400, last_used=timezone.now() - DAY * 100)
    access_token(client, end_user_a, expires_in=3600)
    reaper.run()
    assert exists(client)


def test_it_spares_a_client_with_a_live_code(project_a, end_user_a):
    client = make_client(project_a, age=DAY * 8)
    make_code(client, end_user_a)
    reaper.run()
    assert exists(client)


def test_it_spares_a_client_with_a_live_refresh_token_after_its_access_token_expired(project_a, end_user_a):
    client = make_client(project_a, age=DAY * 400, last_used=timezone.now() - DAY * 100)
    expired = access_token(client, end_user_a, expires_in=-3600, created_ago=DAY * 100)
    refresh_token(client, end_user_a, expired, created_ago=DAY * 10)
    reaper.run()
    assert exists(client)


def test_it_spares_a_client_holding_tokens_issued_by_the_real_token_endpoint(client, project_a, end_user_a):
    body = {"client_name": "Claude", "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none", "scope": "mcp:tools offline_access"}
    info = client.post("/p/alpha/api/oauth/register", json.dumps(body), content_type="application/json").json()
    app = Application.objects.get(project=project_a, client_id=info["client_id"])
    code, verifier = make_code(app, end_user_a)
    issued = redeem(client, app, code, verifier)
    assert issued.status_code == 200
    Application.objects.filter(pk=app.pk).update(created=timezone.now() - DAY * 400,
                                                 last_used_at=timezone.now() - DAY * 100)
    reaper.run()
    assert exists(app)


def test_it_deletes_a_client_whose_tokens_are_all_dead(project_a, end_user_a):
    client = make_client(project_a, age=DAY * 400, last_used=timezone.now() - DAY * 100)
    expired = access_token(client, end_user_a, expires_in=-DAY.total_seconds() * 99, created_ago=DAY * 100)
    refresh_token(client, end_user_a, expired, revoked_ago=DAY * 60, created_ago=DAY * 100)
    reaper.run()
    assert not exists(client)


def test_it_counts_token_activity_as_use_even_when_last_used_at_was_never_set(project_a, end_user_a):
    client = make_client(project_a, age=DAY * 40, last_used=None)
    access_token(client, end_user_a, expires_in=-3600, created_ago=DAY * 10)
    reaper.run()
    client.refresh_from_db()
    assert client.last_used_at is not None  # remembered before the expired token was purged
    assert not AccessToken.objects.filter(application=client).exists()
    reaper.run()
    assert exists(client)  # used 10 days ago: neither "never used" nor idle for 90 days


def test_it_follows_each_projects_own_windows(project_a, project_b):
    project_b.unused_client_days = 30
    project_b.save()
    a = make_client(project_a, age=DAY * 8)
    b = make_client(project_b, age=DAY * 8)
    reaper.run()
    assert not exists(a)
    assert exists(b)
    assert not AuditEvent.objects.filter(project=project_b, kind="reaper.run").exists()


def test_a_zero_day_window_turns_the_rule_off(project_a):
    project_a.unused_client_days = 0
    project_a.save()
    client = make_client(project_a, age=DAY * 400)
    reaper.run()
    assert exists(client)


def test_it_purges_expired_codes_and_tokens_and_keeps_live_ones(project_a, end_user_a, public_client_a):
    make_code(public_client_a, end_user_a, expires_in=-1)
    live_code, _ = make_code(public_client_a, end_user_a)
    dead_access = access_token(public_client_a, end_user_a, expires_in=-60)
    live_access = access_token(public_client_a, end_user_a, expires_in=3600)
    reaper.run()
    assert list(Grant.objects.filter(application=public_client_a).values_list("code", flat=True)) == [live_code]
    assert not AccessToken.objects.filter(pk=dead_access.pk).exists()
    assert AccessToken.objects.filter(pk=live_access.pk).exists()
    event = AuditEvent.objects.get(project=project_a, kind="reaper.run")
    assert event.detail["grants_purged"] == 1 and event.detail["access_tokens_purged"] == 1


def test_it_purges_expired_authorization_requests_of_that_project_only(project_a, project_b, public_client_a,
                                                                      public_client_b):
    now = timezone.now()
    expired = AuthorizationRequest.objects.create(project=project_a, client=public_client_a,
                                                  expires_at=now - timedelta(seconds=1))
    pending = AuthorizationRequest.objects.create(project=project_a, client=public_client_a)
    other = AuthorizationRequest.objects.create(project=project_b, client=public_client_b,
                                                expires_at=now - timedelta(seconds=1))
    reaper.run(now=now)
    remaining = set(AuthorizationRequest.objects.values_list("pk", flat=True))
    assert expired.pk not in remaining and pending.pk in remaining
    assert AuditEvent.objects.get(project=project_a, kind="reaper.run").detail["authorization_requests_purged"] == 1
    assert other.pk not in remaining  # project B's own run purged its own expired request
    assert AuditEvent.objects.get(project=project_b, kind="reaper.run").detail["authorization_requests_purged"] == 1


def test_it_keeps_revoked_refresh_tokens_until_their_lifetime_passed(project_a, end_user_a, public_client_a):
    recent = refresh_token(public_client_a, end_user_a, None, revoked_ago=timedelta(hours=1))
    old = refresh_token(public_client_a, end_user_a, None, revoked_ago=DAY * 31, created_ago=DAY * 40)
    reaper.run()
    assert RefreshToken.objects.filter(pk=recent.pk).exists()  # reuse of it must still be detected
    assert not RefreshToken.objects.filter(pk=old.pk).exists()


def test_it_touches_nothing_of_another_project(project_a, project_b, end_user_b, public_client_b):
    make_code(public_client_b, end_user_b, expires_in=-1)
    project_b.unused_client_days = 0
    project_b.save()
    reaper.reap_project(project_a, timezone.now())
    assert Grant.objects.filter(application=public_client_b).count() == 1


def test_it_writes_no_audit_event_when_there_was_nothing_to_do(project_a):
    reaper.run()
    assert not AuditEvent.objects.filter(kind="reaper.run").exists()


def test_it_runs_as_the_celery_beat_task(project_a):
    doomed = make_client(project_a, age=DAY * 8)
    entry = settings.CELERY_BEAT_SCHEDULE["reap-clients-and-tokens"]
    assert entry["task"] == "oauth.tasks.reap" and entry["task"] in celery_app.tasks
    result = tasks.reap.apply().get()
    assert result["alpha"]["clients"] == 1
    assert not exists(doomed)


def test_it_keeps_the_count_of_open_clients_under_the_cap_right(project_a):
    make_client(project_a, age=DAY * 8)
    make_client(project_a, age=DAY * 3)
    make_client(project_a, path="secret", age=DAY * 8)
    Project.objects.filter(pk=project_a.pk).update(open_client_count=2)
    reaper.run()
    project_a.refresh_from_db()
    assert project_a.open_client_count == 1


def test_it_repairs_a_count_that_drifted(project_a, project_b):
    make_client(project_a, age=DAY)
    Project.objects.filter(pk=project_a.pk).update(open_client_count=40)
    reaper.run()
    project_a.refresh_from_db()
    project_b.refresh_from_db()
    assert (project_a.open_client_count, project_b.open_client_count) == (1, 0)


def test_it_deletes_in_batches_and_misses_none(project_a, end_user_a, public_client_a, monkeypatch):
    # Batches keep each statement under PostgreSQL's 65,535 bound parameters (and its locks short).
    monkeypatch.setattr(reaper, "DELETE_BATCH", 2)
    doomed = [make_client(project_a, name=f"Old {i}") for i in range(5)]
    for _ in range(5):
        access_token(public_client_a, end_user_a, expires_in=-60)

    reaper.run()

    assert not any(exists(c) for c in doomed)
    assert not AccessToken.objects.filter(application=public_client_a).exists()


def test_it_purges_expired_device_codes_of_each_project_and_spares_their_clients_while_live(client, project_a,
                                                                                            project_b):
    from oauth.models import DeviceGrant
    from tests.device_support import device_client, start

    start(client, device_client(project_a))
    start(client, device_client(project_b))
    live = make_client(project_a, name="Fresh CLI")
    Application.objects.filter(pk=live.pk).update(
        metadata={"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})
    start(client, Application.objects.get(pk=live.pk))
    DeviceGrant.objects.exclude(application=live).update(expires=timezone.now() - timedelta(seconds=1))
    reaper.run()
    assert list(DeviceGrant.objects.values_list("application", flat=True)) == [live.pk]
    assert exists(live)  # unused for 8 days, but holding a live device code
    assert AuditEvent.objects.get(project=project_a, kind="reaper.run").detail["device_grants_purged"] == 1
    assert AuditEvent.objects.get(project=project_b, kind="reaper.run").detail["device_grants_purged"] == 1
