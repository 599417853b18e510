"""Celery tasks of the webhooks app; each calls one model-level function and nothing more."""

from celery import shared_task

from webhooks import delivery


@shared_task(name="webhooks.tasks.deliver_due")
def deliver_due() -> int:
    """Beat task (CELERY_BEAT_SCHEDULE, every WEBHOOK_SWEEP_SECONDS): send the due deliveries."""
    return delivery.deliver_due()
