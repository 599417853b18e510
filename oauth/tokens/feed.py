"""The revocation feed: the `jti`s of revoked JWT access tokens, for resource servers that verify
JWTs locally (API.md "Revocation feed"; served by `oauth.endpoints.revocation_feed`).

`oauth.tokens.revoke` records each revoked JWT access token here, in the transaction that ends it,
before it deletes the rows. Opaque tokens have no `jti` and are not listed (introspection is how a
resource server learns of their end). An entry stays until the token would have expired anyway;
the reaper deletes it then (`purge_expired`).

The cursor is the entry's primary key. For a reader never to skip an entry, entries of one project
must become visible in the order of their keys: writers take a per-project transaction-scoped
advisory lock before their key is drawn and hold it until they commit, so a later key is drawn only
after every earlier one is committed. Revocations of one project are serialized by it; they are rare
next to issuance, which never takes it.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connections, router, transaction
from django.utils import timezone

from oauth.errors import InvalidRequest
from oauth.models import RevokedToken

PAGE = 1000  # entries per response at most; `next` continues
BATCH = 5_000  # rows per INSERT
LOCK_NAMESPACE = 0x6D636672  # pg_advisory_xact_lock(namespace, project id): b"mcfr"
MAX_CURSOR = 2**63 - 1  # a bigint


def record(found: Iterable[tuple[int, str | None, datetime]]) -> None:
    """List the revoked JWT access tokens among `found` (project id, jti or None, expiry) in the
    feed, in the caller's transaction (or one of its own). Call before the rows are deleted."""
    entries = [RevokedToken(project_id=project_id, jti=jti, expires=expires)
               for project_id, jti, expires in found if jti]
    if not entries:
        return
    with transaction.atomic(savepoint=False):  # no savepoint: one transaction with the caller
        lock({entry.project_id for entry in entries})
        add(entries)


def add(entries: list[RevokedToken]) -> None:
    """`record`'s INSERT, for a caller that already holds the lock of each entry's project (`lock`)
    in its transaction."""
    # Idempotent: a token revoked twice (a disabled client saved again) is listed once.
    RevokedToken.objects.bulk_create(entries, batch_size=BATCH, ignore_conflicts=True)


def lock(project_ids: Iterable[int]) -> None:
    """Hold the feed's write lock of each project until the transaction ends (in id order: no deadlock
    between two writers). SQLite serializes writers by itself."""
    connection = connections[router.db_for_write(RevokedToken)]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for project_id in sorted(project_ids):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, project_id])


def parse_cursor(value: str | None) -> int:
    """The position after which to list; omitted is the beginning of what is retained."""
    if value is None:
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_CURSOR:
        raise InvalidRequest("The since parameter is not a cursor this feed returned.", reason="bad cursor")
    return int(value)


def page(project, since: int, limit: int | None = None) -> dict:
    """The feed's answer: entries after `since` whose tokens have not expired, oldest first, and the
    cursor to continue from (`since` itself when there is nothing new)."""
    limit = limit or PAGE  # read at call time (tests shrink it)
    found = list(RevokedToken.objects.filter(project=project, pk__gt=since, expires__gt=timezone.now())
                 .order_by("pk").values_list("pk", "jti", "revoked_at", "expires")[:limit])
    return {
        "revoked": [{"jti": jti, "revoked_at": int(revoked_at.timestamp()), "exp": int(expires.timestamp())}
                    for _, jti, revoked_at, expires in found],
        "next": str(found[-1][0] if found else since),
    }


def purge_expired(project, now: datetime) -> int:
    """Delete the entries whose tokens have expired (the reaper); returns how many."""
    deleted, _ = RevokedToken.objects.filter(project=project, expires__lte=now).delete()
    return deleted
