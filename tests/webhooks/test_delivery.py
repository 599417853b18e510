"""Signed webhook deliveries (Standard Webhooks): signing, retries with backoff, giving up, secret
rotation, SSRF refusal, and one dispatcher per delivery at a time."""

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

import webhooks
from projects import keys
from projects.models import AuditEvent
from tests.webhooks.support import deliver, only
from webhooks import changes, delivery, dispatcher
from webhooks.models import Delivery, Webhook


def hook(project, url, events=("grant.revoked",)):
    return changes.create(project, url, list(events), actor="test")


def test_it_creates_a_webhook_from_the_command_line_and_shows_the_secret_once(project_a, receiver):
    out = StringIO()
    call_command("createwebhook", "--project", "alpha", "--url", receiver.url, "--events",
                 "grant.created,grant.revoked", "--json", stdout=out)
    answer = json.loads(out.getvalue())
    assert set(answer) == {"id", "secret"} and answer["secret"].startswith("whsec_")
    row = Webhook.objects.get(pk=answer["id"], project=project_a)
    assert row.events == ["grant.created", "grant.revoked"]
    # Stored encrypted (KEY_ENCRYPTION_KEY), readable back only through the key.
    assert answer["secret"] not in row.secret_encrypted and answer["secret"][6:] not in row.secret_encrypted
    assert keys.decrypt(row.secret_encrypted).decode() == answer["secret"]
    event = AuditEvent.objects.get(project=project_a, kind="webhook.created")
    assert event.actor == "cli" and answer["secret"] not in json.dumps(event.detail)


@pytest.mark.parametrize("argv,message", [
    (["--events", "grant.created,grant.exploded"], "unknown grant.exploded"),
    (["--events", ""], "choose at least one"),
    (["--events", "grant.created", "--url", "ftp://hooks.example/x"], "must be https"),
])
def test_the_command_refuses_unknown_events_and_bad_urls(project_a, argv, message):
    args = ["--project", "alpha", "--url", "https://hooks.example/x", *argv, "--json"]
    with pytest.raises(CommandError, match=message):
        call_command("createwebhook", *args)
    assert not Webhook.objects.exists()


def test_a_delivery_is_signed_the_standard_webhooks_way(project_a, receiver):
    webhook, secret = hook(project_a, receiver.url)
    assert webhooks.emit(project_a, "grant.revoked", {"client_id": "c1", "subject": "s1"}) == 1
    assert receiver.received == []  # emit only queues
    assert deliver() == 1
    (got,) = receiver.received
    payload = got.verified(secret)
    assert payload["type"] == "grant.revoked" and payload["data"] == {"client_id": "c1", "subject": "s1"}
    assert payload["timestamp"].endswith("Z")
    row = only(project_a, "grant.revoked")
    assert got.headers["webhook-id"] == row.event_id and row.event_id.startswith("msg_")
    assert got.headers["content-type"] == "application/json" and got.headers["user-agent"] == "mcpauth-webhooks"
    assert (row.state, row.attempts, row.last_status, row.next_attempt_at) == ("delivered", 1, 204, None)
    assert row.delivered_at is not None and row.webhook == webhook


def test_only_subscribed_enabled_webhooks_of_the_project_get_the_event(project_a, project_b, receiver):
    hook(project_a, receiver.url, ["grant.created"])
    disabled, _ = hook(project_a, receiver.url)
    changes.update(disabled, actor="test", enabled=False)
    hook(project_b, receiver.url)
    assert webhooks.emit(project_a, "grant.revoked", {}) == 0
    assert webhooks.emit(project_b.pk, "grant.revoked", {}) == 1
    deliver()
    assert receiver.types() == ["grant.revoked"]
    assert Delivery.objects.filter(project=project_a).count() == 0


def test_a_failed_delivery_is_retried_within_30_seconds_then_succeeds(project_a, receiver):
    webhook, secret = hook(project_a, receiver.url)
    receiver.statuses = [500]
    webhooks.emit(project_a, "grant.revoked", {"client_id": "c1"})
    before = timezone.now()
    deliver()
    row = only(project_a, "grant.revoked")
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
    assert row.last_error.startswith("receiver says no") and len(row.last_error) == delivery.EXCERPT_CHARS
    assert before + timedelta(seconds=10) <= row.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    assert deliver() == 0  # not due yet
    assert deliver_at(row.next_attempt_at) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 2, 204, "")
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row.event_id  # idempotency key
    assert first.body == second.body and second.verified(secret)["data"] == {"client_id": "c1"}


def deliver_at(moment) -> int:
    return delivery.deliver_due(now=moment)


def test_the_backoff_schedule_is_exponential_and_ends_in_failure(project_a, receiver):
    webhook, _ = hook(project_a, receiver.url)
    webhooks.emit(project_a, "grant.revoked", {})
    row = only(project_a, "grant.revoked")
    now = timezone.now()
    waits = []
    while row.state == Delivery.State.PENDING:
        delivery.record(row, now, 503, "")
        if row.next_attempt_at:
            waits.append((row.next_attempt_at - now).total_seconds())
    assert waits == [10, 60, 300, 1800, 7200, 28800]
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 7, None)


def test_it_gives_up_after_the_last_retry(project_a, receiver):
    hook(project_a, receiver.url)
    receiver.statuses = [500] * 10
    webhooks.emit(project_a, "grant.revoked", {})
    row = only(project_a, "grant.revoked")
    for _ in range(len(delivery.BACKOFF) + 1):
        assert deliver_at(timezone.now() + timedelta(days=1)) == 1
    assert deliver_at(timezone.now() + timedelta(days=30)) == 0
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status, row.next_attempt_at) == ("failed", 7, 500, None)
    assert len(receiver.received) == 7


def test_a_timeout_is_a_failed_attempt(project_a, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    hook(project_a, receiver.url)
    receiver.hold.clear()  # the receiver never answers in time
    webhooks.emit(project_a, "grant.revoked", {})
    deliver()
    receiver.hold.set()
    row = only(project_a, "grant.revoked")
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, None)
    assert row.last_error == "the server did not answer in time"


def test_a_failed_delivery_can_be_retried_now(project_a, receiver):
    hook(project_a, receiver.url)
    receiver.statuses = [500] * 7
    webhooks.emit(project_a, "grant.revoked", {})
    for _ in range(7):
        deliver_at(timezone.now() + timedelta(days=1))
    row = only(project_a, "grant.revoked")
    assert row.state == "failed"
    changes.retry(row, actor="alice@example.com")
    assert deliver() == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_status) == ("delivered", 8, 204)
    assert AuditEvent.objects.filter(project=project_a, kind="webhook.delivery_retried").count() == 1


def test_during_a_rotation_both_secrets_sign_for_24_hours(project_a, receiver):
    webhook, old = hook(project_a, receiver.url)
    new = changes.rotate(webhook, actor="test")
    assert new != old and new.startswith("whsec_")
    webhooks.emit(project_a, "grant.revoked", {})
    deliver()
    (got,) = receiver.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified(old)["type"] == got.verified(new)["type"] == "grant.revoked"
    webhook.refresh_from_db()
    later = timezone.now() + timedelta(hours=24, seconds=1)
    assert len(webhook.signing_secrets(later)) == 1
    assert keys.decrypt(webhook.secret_encrypted).decode() == new
    assert AuditEvent.objects.filter(project=project_a, kind="webhook.secret_rotated").count() == 1


def test_after_the_overlap_only_the_new_secret_signs(project_a, receiver):
    webhook, old = hook(project_a, receiver.url)
    new = changes.rotate(webhook, actor="test")
    Webhook.objects.filter(pk=webhook.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    webhooks.emit(project_a, "grant.revoked", {})
    deliver()
    (got,) = receiver.received
    assert got.verified(new)
    with pytest.raises(Exception, match="No matching signature"):
        got.verified(old)


def test_a_private_address_is_refused(project_a, receiver, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(changes.Refused, match="the address is not allowed"):
        hook(project_a, "https://10.0.0.7/hooks")
    with pytest.raises(changes.Refused, match="must be https"):
        hook(project_a, receiver.url)  # plain http only where private addresses are allowed
    # A name that resolves to a private address is refused at delivery, before any connection.
    port = receiver.httpd.server_address[1]
    hook(project_a, f"https://localhost:{port}/hooks")
    webhooks.emit(project_a, "grant.revoked", {})
    deliver()
    row = only(project_a, "grant.revoked")
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("pending", 1, None, "the address is not allowed")
    assert receiver.received == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_never_send_one_delivery_twice(project_a, receiver):
    hook(project_a, receiver.url)
    for n in range(12):
        webhooks.emit(project_a, "grant.revoked", {"n": n})
    counts = []

    def dispatcher_thread():
        try:
            counts.append(delivery.deliver_due(limit=1))
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted(Delivery.objects.values_list("event_id", flat=True)) and len(set(ids)) == 12
    assert sum(counts) == 12
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True)
def test_the_embedded_default_sends_from_a_background_thread(project_a, receiver, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no Celery worker: the web process's own dispatcher
    settings.WEBHOOK_SWEEP_SECONDS = 0.05
    hook(project_a, receiver.url)
    thread = dispatcher.start()
    try:
        assert thread is not None and dispatcher.start() is thread  # once per process
        webhooks.emit(project_a, "grant.revoked", {"client_id": "c1"})
        assert receiver.arrived.wait(30)
    finally:
        dispatcher.stop()
    assert receiver.types() == ["grant.revoked"] and not thread.is_alive()


def test_a_worker_with_celery_runs_the_beat_task(project_a, receiver, settings):
    from mcpauth_service.celery import app as celery_app
    from webhooks import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["deliver-webhooks"]
    assert entry["task"] in celery_app.tasks and entry["schedule"] <= 10  # well within the first retry's 10 s
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert not dispatcher.needed()
    hook(project_a, receiver.url)
    webhooks.emit(project_a, "grant.revoked", {})
    assert tasks.deliver_due.apply().get() == 1
    assert receiver.types() == ["grant.revoked"]
