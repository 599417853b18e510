"""Ending tokens: the one path every revocation takes (RFC 7009 §2.1, RFC 6749 §4.1.2 and §10.4).

Every caller ends tokens through these functions: the RFC 7009 endpoint (`Validator.revoke_token`),
a replayed code or a reused refresh token (the validator), the dashboard and the management API
(all tokens of a client, everything an end user granted), and the deletion of a client or an end
user. Each removes or marks the rows *and* tombstones their cached introspection answers
(`tokens.forget`, at once and again at commit), so introspection answers `{"active": false}` on
every worker as soon as the caller's transaction commits, before it answers; and each lists the
JWT access tokens it ends in the revocation feed (`feed.record`), in the same transaction, before
it deletes them.

Bulk revocations end the rows they found, by primary key: a token issued while they run is
either ended and tombstoned, or left live in the database and in the cache alike.
"""

import uuid

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from infra import rows
from oauth.models import AccessToken, Application, Grant, RefreshToken, RevokedToken
from oauth.tokens import feed
from oauth.tokens import issue as tokens
from projects.models import AuditEvent
from webhooks import emit

BATCH = 5_000  # rows per DELETE: well within PostgreSQL's 65,535 bound parameters
# What ending access tokens needs of them: the cache key, and the revocation feed's entry.
ENDING = ("token_checksum", "application__project_id", "claims__jti", "expires")


def _listed(found: list[tuple]) -> list[str]:
    """Record the JWTs among `found` (rows of ENDING) in the feed; returns their checksums."""
    feed.record((project_id, jti, expires) for _, project_id, jti, expires in found)
    return [checksum for checksum, *_ in found]


def family(family_id: uuid.UUID | None, reason: str = "revoked") -> None:
    """End a whole grant: every refresh token of the family and every access token they carry."""
    if not family_id:
        return
    grant = (RefreshToken.objects.filter(token_family=family_id)
             .values_list("application__project_id", "application__client_id", "user__subject").first())
    members = RefreshToken.objects.filter(token_family=family_id).values("access_token_id")
    with transaction.atomic(savepoint=False):
        doomed = _listed(list(AccessToken.objects.filter(pk__in=members).values_list(*ENDING)))
        RefreshToken.revoke_family(family_id)  # the toolkit's set-based sweep: revokes the rows, deletes their access tokens
    tokens.forget(doomed)
    if grant:
        project_id, client_id, subject = grant
        emit(project_id, "grant.revoked", {"client_id": client_id, "subject": subject, "reason": reason})


def refresh_token(row: RefreshToken) -> None:
    """RFC 7009 §2.1: revoking a refresh token ends its family (every token of the grant)."""
    if row.token_family:
        family(row.token_family)
        return
    with transaction.atomic(savepoint=False):
        doomed = _listed(list(AccessToken.objects.filter(pk=row.access_token_id).values_list(*ENDING)))
        row.revoke()
    tokens.forget(doomed)


def _carrier(access_id: int) -> QuerySet:
    return RefreshToken.objects.filter(access_token_id=access_id).values_list("token_family", "access_token_id")


def _carrier_or_source(access_id: int, source_id: int) -> QuerySet:
    return (RefreshToken.objects.filter(Q(access_token_id=access_id) | Q(pk=source_id))
            .values_list("token_family", "access_token_id"))


def _uncarried_removal(access_id: int) -> rows.Guard:
    """`DELETE` the access token unless a refresh token carries it (refresh tokens are the only rows
    that refer to an access token)."""
    removal = rows.removal(AccessToken, access_id)
    refresh = RefreshToken._meta
    table, column = (connection.ops.quote_name(n) for n in (refresh.db_table, refresh.get_field("access_token").column))
    return rows.Guard(f"{removal.sql} AND NOT EXISTS (SELECT 1 FROM {table} WHERE {column} = %s)",
                      (*removal.params, *removal.params))


def access_token(row: AccessToken, event: AuditEvent | None = None) -> None:
    """End one access token and, when it came with a refresh token, the grant it belongs to.

    With `event` (RFC 7009 revocation), the event is written with the revocation: a token nothing
    refers to goes with one statement, its `DELETE` (guarded: no refresh token carries it) and the
    event's `INSERT`, outside any transaction (a JWT's, with its feed entry, in one); a grant's tokens
    go in one transaction with the event.
    """
    if event is not None and not row.source_refresh_token_id:
        # Not refreshed from a grant (client_credentials, token exchange, a code's first token): its
        # DELETE, unless a refresh token carries it, and the event's INSERT are one statement.
        if tokens.forget_across([row.token_checksum],
                                lambda: _remove_with_event(row, event, _uncarried_removal(row.pk))):
            return
        # Carried (a code's grant: it ends with its family below), or removed first by another revocation.
    # The refresh token carrying it, and the one it was refreshed from: both of the same grant.
    if row.source_refresh_token_id:
        found = rows.fetch(RefreshToken, _carrier_or_source, row.pk, row.source_refresh_token_id)
    else:
        found = rows.fetch(RefreshToken, _carrier, row.pk)
    family_id = next((f for f, _ in found if f), None)
    carried = any(access_id == row.pk for _, access_id in found)
    if event is None:
        with transaction.atomic(savepoint=False):
            _end_access_token(row, family_id, carried, row.application.project_id)
    elif family_id or carried:
        with transaction.atomic():
            _end_access_token(row, family_id, carried, event.project_id)
            rows.insert(event)
    else:  # a concurrent revocation that removed it first wrote the event
        tokens.forget_across([row.token_checksum],
                             lambda: _remove_with_event(row, event, rows.removal(AccessToken, row.pk)))


def _remove_with_event(row: AccessToken, event: AuditEvent, guard: rows.Guard) -> bool:
    """One statement removes the token (where `guard` holds) and writes the event; a JWT also enters
    the feed with them."""
    if not row.claims.get("jti"):
        return rows.write(event, guard=guard)
    with transaction.atomic(savepoint=False):
        feed.lock([event.project_id])  # before the DELETE's row lock, as every feed writer
        done = rows.write(event, guard=guard)
        if done:  # the lock is held already: only the INSERT
            feed.add([RevokedToken(project_id=event.project_id, jti=row.claims["jti"], expires=row.expires)])
        return done


def _end_access_token(row: AccessToken, family_id: uuid.UUID | None, carried: bool, project_id: int) -> None:
    if row.claims.get("jti") and not (family_id and carried):  # else `family` lists it with the others
        feed.record([(project_id, row.claims["jti"], row.expires)])
    if family_id:
        family(family_id)  # deletes every access token its refresh tokens carry
    if not (family_id and carried):
        if carried:  # a refresh token outside any family still points at it: the collector clears that
            AccessToken.objects.filter(pk=row.pk).delete()
        else:
            rows.delete(AccessToken, row.pk)  # one DELETE: nothing refers to it
    tokens.forget([row.token_checksum])


def _end(access: QuerySet, refresh: QuerySet, codes: QuerySet) -> int:
    """End the access tokens, refresh tokens and pending codes selected; returns how many access
    tokens were live. Call inside the caller's transaction."""
    now = timezone.now()
    found = list(access.values_list("pk", *ENDING))
    doomed = _listed([ending for _, *ending in found])
    refresh.filter(revoked__isnull=True).update(revoked=now, updated=now)
    pks = [pk for pk, *_ in found]
    for start in range(0, len(pks), BATCH):
        AccessToken.objects.filter(pk__in=pks[start:start + BATCH]).delete()
    codes.delete()
    tokens.forget(doomed)
    return sum(1 for *_, expires in found if expires > now)


def client_tokens(client: Application) -> int:
    """Every token and pending code of one client (revoked from the dashboard or the API, or the
    client disabled); returns how many access tokens were live."""
    live = _end(AccessToken.objects.filter(application=client), RefreshToken.objects.filter(application=client),
                Grant.objects.filter(application=client))
    emit(client.project_id, "grant.revoked", {"client_id": client.client_id, "subject": None, "reason": "client"})
    return live


def end_user_grants(project, person) -> int:
    """Every token and pending code an end user holds in `project`; returns how many were live."""
    mine = {"user": person, "application__project": project}
    live = _end(AccessToken.objects.filter(**mine), RefreshToken.objects.filter(**mine), Grant.objects.filter(**mine))
    emit(project, "grant.revoked", {"client_id": None, "subject": person.subject, "reason": "end_user"})
    return live


def issuer_tokens(project, issuer: str) -> int:
    """Every token a project issued from an enterprise issuer's assertions (ID-JAG), refreshed or
    not: the issuer is no longer trusted. Call inside the caller's transaction."""
    mine = {"application__project": project}
    emit(project, "grant.revoked", {"client_id": None, "subject": None, "reason": "issuer_untrusted", "issuer": issuer})
    return _end(AccessToken.objects.filter(claims__assertion_iss=issuer, **mine),
                RefreshToken.objects.filter(assertion_iss=issuer, **mine), Grant.objects.none())


def gone_with(access: QuerySet) -> None:
    """The rows go by cascade (a client or an end user deleted, a client disabled): tombstone their
    cached answers, and list the JWTs among them in the revocation feed."""
    tokens.forget(_listed(list(access.values_list(*ENDING))))
