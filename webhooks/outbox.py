"""Queueing events: rows in the outbox, written in the caller's transaction, nothing sent."""

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from infra import rows
from webhooks.models import Delivery, Webhook


def new_event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def body(type: str, data: dict, now: datetime) -> str:
    """The JSON body of the contract: {"type", "timestamp", "data"}."""
    stamp = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps({"type": type, "timestamp": stamp, "data": data}, separators=(",", ":"))


def queued(project_id: int, webhook_id: int, type: str, payload: str, now: datetime) -> Delivery:
    """An unsaved outbox row, due at once, with its own event id (kept across retries)."""
    return Delivery(project_id=project_id, webhook_id=webhook_id, event_id=new_event_id(), type=type,
                    payload=payload, next_attempt_at=now, created_at=now)


def _subscribers(project_id: int) -> QuerySet:
    return Webhook.objects.filter(project_id=project_id, enabled=True).values_list("pk", "events")


def emit(project: Any, type: str, data: dict) -> int:
    """One indexed query when the project has no webhook (the common case): event sites are not
    per-token paths, so no cache is needed and none can answer stale. The query is compiled once
    (`rows.fetch`): building it through the ORM cost a registration more CPU than running it."""
    project_id = getattr(project, "pk", project)
    targets = [pk for pk, events in rows.fetch(Webhook, _subscribers, project_id) if type in events]
    if not targets:
        return 0
    now = timezone.now()
    payload = body(type, data, now)
    Delivery.objects.bulk_create([queued(project_id, pk, type, payload, now) for pk in targets])
    return len(targets)


def enqueue(webhook: Webhook, type: str, data: dict) -> Delivery:
    """One delivery to one webhook whatever it subscribes to (the dashboard's "Send test event")."""
    now = timezone.now()
    delivery = queued(webhook.project_id, webhook.pk, type, body(type, data, now), now)
    delivery.webhook = webhook
    delivery.save(force_insert=True)
    return delivery
