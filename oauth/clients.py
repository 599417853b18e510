"""Finding a project's client by `client_id`: the one lookup every endpoint uses.

Registered clients are looked up within the project only (client_id is unique per project);
CIMD clients (an https URL as client_id) are resolved through `oauth.cimd` when the project
allows them.
"""

from django.http import HttpRequest

from . import cimd
from .models import Application


def load_client(project, client_id: str, request: HttpRequest | None = None) -> Application | None:
    """The usable client `client_id` of `project`, or None (unknown, deleted or disabled).

    An https URL that no registered client of the project owns is a CIMD client: its document
    is fetched (or taken from the cache) and the project's row for it created or refreshed.
    This may do network I/O and a write; it never raises for a bad document (None instead).
    """
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
        return None
    # (project, client_id) is unique: no ORDER BY, as `.first()` would add on this hot path.
    client = next(iter(Application.objects.filter(project=project, client_id=client_id)[:1]), None)
    if client is not None and client.disabled_at is not None:
        return None
    if cimd.is_cimd_client_id(client_id) and (client is None or client.registration_path == Application.Path.CIMD):
        return cimd.resolve(project, client_id, existing=client)
    return client
