"""The open-registration quota (API.md "Registration"): `Project.open_client_count` against `open_client_cap`.

The counter lives on the project row (taken by registration, `Project.open_client_slot`; given back
when an open client is deleted, `oauth.signals`); this module owns the repair that needs the clients.
"""

from oauth.models import Application
from projects.models import Project


def recount_open_clients(project: Project) -> None:
    """Set the counter to the count of rows (the reaper's repair of any drift), in the caller's transaction."""
    # The row lock first, so that the count below (a later statement, a newer snapshot) sees
    # every registration that took a slot before it; later ones add theirs to this count.
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
    open_clients = Application.objects.filter(project=project, registration_path=Application.Path.OPEN)
    Project.objects.filter(pk=project.pk).update(open_client_count=open_clients.count())
