"""Signal receivers of the webhooks app, connected in WebhooksConfig.ready(): project secrets live in
`projects/`, which imports nothing above it, and are issued by the CLI, the dashboard and the API
alike, so their events are emitted here, in the saving transaction, once for every path."""

from django.db.models import signals

from projects.models import ProjectSecret
from webhooks import emit


def secret_saved(sender, instance: ProjectSecret, created: bool, update_fields=None, **kwargs) -> None:
    described = {"id": instance.pk, "name": instance.name, "permissions": instance.permissions}
    if created:
        emit(instance.project_id, "secret.created", described)
    elif instance.revoked_at is not None and update_fields and "revoked_at" in update_fields:
        emit(instance.project_id, "secret.revoked", described)


def connect() -> None:
    signals.post_save.connect(secret_saved, sender=ProjectSecret, dispatch_uid="webhooks_secret_events")
