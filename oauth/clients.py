"""Finding a project's client by `client_id`: the one lookup every endpoint uses.

Registered clients are looked up within the project only (client_id is unique per project);
CIMD clients (an https URL as client_id) are resolved through `oauth.cimd` when the project
allows them.
"""

from django.http import HttpRequest

from .models import Application


def load_client(project, client_id: str, request: HttpRequest | None = None) -> Application | None:
    """The usable client `client_id` of `project`, or None (unknown, deleted or disabled)."""
    if not client_id or len(client_id) > 255:
        return None
    client = Application.objects.filter(project=project, client_id=client_id, disabled_at__isnull=True).first()
    return client
