"""Celery tasks of the oauth app; each calls one model-level function and nothing more."""

from celery import shared_task

from oauth.tokens import reaper


@shared_task(name="oauth.tasks.reap")
def reap() -> dict[str, dict[str, int]]:
    """Beat task (CELERY_BEAT_SCHEDULE): the reaper over every project; returns counts per project."""
    return {
        slug: {"clients": len(report.clients), "grants": report.grants, "access_tokens": report.access_tokens,
               "refresh_tokens": report.refresh_tokens}
        for slug, report in reaper.run().items()
    }
