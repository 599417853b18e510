"""Scheduled project maintenance (Celery beat): signing-key rotation on each project's schedule."""

from celery import shared_task

from projects.models import Project


@shared_task
def rotate_due_signing_keys() -> dict[str, str]:
    """Rotate every key older than its project's `key_rotation_days`; returns {slug: new kid}."""
    return {project.slug: project.rotate_signing_key(actor="schedule").kid
            for project in Project.objects.due_for_key_rotation()}
