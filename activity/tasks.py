"""Celery tasks of the activity app; each calls one function and nothing more."""

from celery import shared_task

from activity import rollup


@shared_task(name="activity.tasks.rollup")
def roll_up() -> dict[str, int]:
    """Beat task (CELERY_BEAT_SCHEDULE): closed minutes of Redis counters into the table, events into the audit log."""
    return rollup.run()
