"""Sending the outbox: signed (Standard Webhooks, with the `standardwebhooks` package), posted through
the SSRF-safe client, retried with exponential backoff, each row claimed by one dispatcher at a time.

A dispatcher claims due rows under `SELECT … FOR UPDATE SKIP LOCKED` and pushes their
`next_attempt_at` past the send's deadline (a lease) before it commits, then sends outside any
transaction. Another dispatcher (a second Celery worker, or the background thread of another web
process) skips the locked rows and no longer sees the leased ones as due, so no delivery is sent
twice at once; one whose dispatcher died mid-send is due again when its lease ends (at least once).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook as Signer

from infra import outbound
from webhooks.models import Delivery, allowed_schemes

log = logging.getLogger("mcpauth.webhooks")

# After the n-th failed attempt, the next one waits BACKOFF[n-1]; after the last, the delivery fails.
BACKOFF = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2), timedelta(hours=8))
MAX_RESPONSE_BYTES = 64 * 1024
EXCERPT_CHARS = 120
BATCH = 20


def timeout() -> float:
    return float(getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10))


def lease() -> timedelta:
    return timedelta(seconds=timeout() + 60)


def headers(delivery: Delivery, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers; during a rotation overlap, one signature per secret (space-separated)."""
    body = delivery.payload.encode()
    signatures = [Signer(secret).sign(delivery.event_id, now, body) for secret in delivery.webhook.signing_secrets(now)]
    return {"Content-Type": "application/json", "User-Agent": "mcpauth-webhooks", "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": " ".join(signatures)}


def claim(now: datetime, limit: int = BATCH, skip: frozenset[int] = frozenset()) -> list[Delivery]:
    """Due rows no other dispatcher holds (and none of `skip`), leased to this one."""
    with transaction.atomic():
        due = Delivery.objects.due(now).exclude(pk__in=skip)
        rows = list(due.select_for_update(skip_locked=True, of=("self",)).select_related("webhook")
                    .order_by("next_attempt_at")[:limit])
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=now + lease())
    return rows


def succeeded(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def send(delivery: Delivery, now: datetime) -> tuple[int | None, str]:
    """(status, error): the receiver's status and a short excerpt of its answer, or None and why not."""
    try:
        response = outbound.post(delivery.webhook.url, delivery.payload.encode(), headers=headers(delivery, now),
                                 timeout=timeout(), max_bytes=MAX_RESPONSE_BYTES, schemes=allowed_schemes())
    except outbound.OutboundError as exc:
        log.info("webhook delivery %s failed: %s", delivery.event_id, exc)
        return None, exc.reason
    if succeeded(response.status):
        return response.status, ""
    return response.status, response.body[:EXCERPT_CHARS].decode("utf-8", "replace")


def record(delivery: Delivery, now: datetime, status: int | None, error: str) -> None:
    """The attempt's outcome: delivered, due again after the backoff, or failed for good."""
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status, delivery.last_error = now, status, error[:300]
    if succeeded(status):
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = Delivery.State.DELIVERED, now, None
    elif delivery.attempts > len(BACKOFF):
        delivery.state, delivery.next_attempt_at = Delivery.State.FAILED, None
    else:
        delivery.state, delivery.next_attempt_at = Delivery.State.PENDING, now + BACKOFF[delivery.attempts - 1]
    delivery.save(update_fields=["attempts", "last_attempt_at", "last_status", "last_error", "state",
                                 "delivered_at", "next_attempt_at"])


def attempt(delivery: Delivery) -> None:
    now = timezone.now()
    status, error = send(delivery, now)
    record(delivery, timezone.now(), status, error)


def deliver_due(now: datetime | None = None, limit: int = BATCH) -> int:
    """Send every delivery due at `now` (default: the clock), batch by batch; returns how many were
    attempted. `now` only chooses what is due: each attempt is signed and scheduled by the clock."""
    done: set[int] = set()
    while rows := claim(now or timezone.now(), limit, frozenset(done)):
        for row in rows:
            attempt(row)
        done.update(row.pk for row in rows)
    return len(done)
