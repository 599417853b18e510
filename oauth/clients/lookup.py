"""Finding a project's client by `client_id`: the one lookup every endpoint uses.

Registered clients are looked up within the project only (client_id is unique per project);
CIMD clients (an https URL as client_id) are resolved through `oauth.clients.cimd` when the project
allows them.

The token, revocation and introspection endpoints look the same few clients up on every
request, so rows are kept in process (`infra.localcache`, the tier projects and secrets use):
any save or delete of a client, queryset deletes included (they send `post_delete`), moves the
shared generation on at once and again at commit, so from the change's response on no process
serves the old row.
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from infra.localcache import MISS, now_and_at_commit
from infra.observe import client_known
from oauth.clients import cimd
from oauth.models import Application
from projects.models import clone_row, local_cache


def cache_key(project_id: int, client_id: str) -> str:
    return f"client:{project_id}:{client_id}"


def _registered(project, client_id: str) -> Application | None:
    """The project's row for `client_id` (disabled or not), from the process tier when it has it."""
    # Unknown ids are not kept: a flood of them must not evict real clients.
    row = local_cache.get_or_load(cache_key(project.pk, client_id), lambda: _read(project, client_id),
                                  keep=lambda found: found is not None)
    if row is None:
        return None
    client = clone_row(row)  # each request gets its own instance; the cached one is never handed out
    client.project = project  # the caller's project: no query when a hook follows client.project
    return client


def _read(project, client_id: str) -> Application | None:
    # (project, client_id) is unique: no ORDER BY, as `.first()` would add on this hot path.
    return next(iter(Application.objects.filter(project=project, client_id=client_id)[:1]), None)


class ClientRefused(Exception):
    """No usable client answers to a client_id. `reason` is for the authorization error page: words
    a developer can act on, never a secret, a fetched body or an internal address."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def find_client(project, client_id: str, request: HttpRequest | None = None) -> Application:
    """The usable client `client_id` of `project`; else ClientRefused saying why.

    An https URL that no registered client of the project owns is a CIMD client: its document
    is fetched (or taken from the cache) and the project's row for it created or refreshed.
    This may do network I/O and a write.
    """
    if not isinstance(client_id, str) or not client_id or len(client_id) > 255:
        raise ClientRefused("unknown client_id")
    client = _registered(project, client_id)
    if client is not None and client.disabled_at is not None:
        raise ClientRefused("this client has been disabled by the project's operator")
    if cimd.is_cimd_client_id(client_id) and (client is None or client.registration_path == Application.Path.CIMD):
        try:
            found = cimd.find(project, client_id, existing=client)
        except cimd.Refused as exc:
            raise ClientRefused(exc.reason) from None
        client_known(client_id)
        return found
    if client is None:
        hint = " (a Client ID Metadata Document URL must be https)" if client_id.startswith("http://") else ""
        raise ClientRefused("unknown client_id" + hint)
    client_known(client_id)
    return client


def load_client(project, client_id: str, request: HttpRequest | None = None) -> Application | None:
    """The usable client `client_id` of `project`, or None (unknown, deleted, disabled, or a CIMD
    document that cannot be used): `find_client` without the reason. Never raises for a bad document."""
    try:
        return find_client(project, client_id, request)
    except ClientRefused:
        return None


def forget(client: Application) -> None:
    """Drop `client` from every process's tier now, and again at commit (a reader may refill in between)."""
    key = cache_key(client.project_id, client.client_id)
    now_and_at_commit(lambda: local_cache.forget(key))


def touched(client: Application) -> None:
    """`last_used_at` was written: this process's kept row learns it (each process writes its own
    once an hour at most); a last-use time is bookkeeping no other worker must honour."""
    kept = local_cache.peek(cache_key(client.project_id, client.client_id))
    if kept is not MISS and kept is not None and kept.pk == client.pk:
        kept.last_used_at = client.last_used_at


@receiver(post_save, sender=Application, dispatch_uid="mcpauth.clients.saved")
@receiver(post_delete, sender=Application, dispatch_uid="mcpauth.clients.deleted")
def _client_changed(sender, instance: Application, created: bool = False, **kwargs) -> None:
    if not created:  # a new client cannot be in any process's tier: unknown ids are never kept
        forget(instance)
