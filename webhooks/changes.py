"""Changing a project's webhooks: the CLI's, the dashboard's and the management API's one way, each
change validated the same and written to the audit log (never with a secret)."""

from projects.models import AuditEvent, Project
from webhooks import outbox
from webhooks.events import EVENTS, TEST_EVENT, unknown
from webhooks.models import Delivery, Webhook, url_problem


class Refused(ValueError):
    """The change is not allowed; the message is safe to show. `field` names the value refused (None: the
    change as a whole); str() reads "field: message", as the CLI prints it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def check(url: str, events: list[str]) -> None:
    problem = url_problem(url)
    if problem:
        raise Refused(problem, field="url")
    if not events:
        raise Refused("choose at least one of " + ", ".join(EVENTS), field="events")
    if wrong := unknown(events):
        raise Refused(f"unknown {', '.join(sorted(wrong))}; known: {', '.join(EVENTS)}", field="events")


def create(project: Project, url: str, events: list[str], *, actor: str, request=None) -> tuple[Webhook, str]:
    check(url, events)
    webhook, secret = Webhook.create(project, url, events)
    AuditEvent.record(project, "webhook.created", actor=actor, request=request, webhook_id=webhook.pk, url=url,
                      events=webhook.events)
    return webhook, secret


def update(webhook: Webhook, *, actor: str, request=None, url: str | None = None, events: list[str] | None = None,
           enabled: bool | None = None) -> Webhook:
    url = webhook.url if url is None else url
    events = webhook.events if events is None else events
    check(url, events)
    webhook.url, webhook.events = url, sorted(set(events))
    if enabled is not None:
        webhook.enabled = enabled
    webhook.save(update_fields=["url", "events", "enabled"])
    AuditEvent.record(webhook.project, "webhook.updated", actor=actor, request=request, webhook_id=webhook.pk,
                      url=webhook.url, events=webhook.events, enabled=webhook.enabled)
    return webhook


def rotate(webhook: Webhook, *, actor: str, request=None) -> str:
    secret = webhook.rotate_secret()
    AuditEvent.record(webhook.project, "webhook.secret_rotated", actor=actor, request=request, webhook_id=webhook.pk)
    return secret


def delete(webhook: Webhook, *, actor: str, request=None) -> None:
    AuditEvent.record(webhook.project, "webhook.deleted", actor=actor, request=request, webhook_id=webhook.pk,
                      url=webhook.url)
    webhook.delete()


def send_test(webhook: Webhook, *, actor: str, request=None) -> Delivery:
    delivery = outbox.enqueue(webhook, TEST_EVENT, {"webhook_id": webhook.pk, "project": webhook.project.slug})
    AuditEvent.record(webhook.project, "webhook.test_sent", actor=actor, request=request, webhook_id=webhook.pk,
                      event_id=delivery.event_id)
    return delivery


def retry(delivery: Delivery, *, actor: str, request=None) -> None:
    if delivery.state != Delivery.State.FAILED:
        raise Refused("only a failed delivery can be retried now")
    delivery.retry_now()
    AuditEvent.record(delivery.project, "webhook.delivery_retried", actor=actor, request=request,
                      webhook_id=delivery.webhook_id, event_id=delivery.event_id)
