"""Token service (RFC 6749 §5.1, RFC 8707, RFC 9068, RFC 7662 cache): minting, audience, finding.

Everything that creates or finds an access or refresh token goes through here (ending one goes
through `oauth.tokens.revoke`), whether the
request came through oauthlib (the token endpoint) or not (the mcpauth exchange):

- values: opaque `mcpat_…`/`mcprt_…` (projects.secrets) or an RFC 9068 JWT (oauth.tokens.jwt_tokens);
  the database keeps only the toolkit's sha256 `token_checksum` (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE);
- lifetimes come from the project (`access_token_ttl`, `refresh_token_ttl`);
- audience: the granted resource, narrowed by a `resource` parameter, within `project.resources`;
- introspection answers are cached by checksum in the shared cache (compact bytes) and replaced
  by a tombstone whenever a token is revoked (`oauth.tokens.revoke`, the one way tokens end), so a
  resource server may introspect on every request.
"""

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import set_token_value

from activity import record as activity
from infra import metrics, rows
from infra.cache import add_bytes, get_bytes, set_many_bytes
from infra.localcache import now_and_at_commit
from oauth.backend import issuer_of, own, project_of
from oauth.clients import lookup as clients
from oauth.errors import InvalidTarget
from oauth.grants import TOKEN_EXCHANGE
from oauth.models import AccessToken, Application, RefreshToken
from oauth.tokens import jwt_tokens
from projects import secrets
from projects.models import Project

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # RFC 8693 §3
CLIENT_TOUCH_RESOLUTION = timedelta(hours=1)  # bounds `last_used_at` writes on the hot path


def checksum(value: str) -> str:
    """The toolkit's lookup checksum of a token (sha256 hex); the only thing the database keeps."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- lifetimes and values (oauthlib's BearerToken hooks) -------------------------------------------
def access_token_lifetime(request) -> int:
    """oauthlib `token_expires_in`: the project's TTL, capped for exchanged tokens (never outlive the subject)."""
    ttl = project_of(request).access_token_ttl
    cap = own(request, "expires_in_cap", None)
    return max(1, min(ttl, cap)) if cap is not None else ttl


def generate_access_token(request) -> str:
    """ACCESS_TOKEN_GENERATOR: opaque `mcpat_…` or, for a JWT project, a signed RFC 9068 token."""
    return new_access_token(
        project_of(request), issuer_of(request), request.client, getattr(request, "user", None),
        scope=" ".join(request.scopes or []), audience=own(request, "audience", []),
        expires_in=request.expires_in, claims=own(request, "token_claims", {}),
    )


def generate_refresh_token(request) -> str:
    """REFRESH_TOKEN_GENERATOR: refresh tokens are always opaque."""
    return secrets.generate(secrets.REFRESH_TOKEN_PREFIX)


def subject_for(client: Application, user, claims: dict[str, Any] | None = None) -> str:
    """`sub`: the end user's subject; for client_credentials tokens, the client itself."""
    claims = claims or {}
    if claims.get("sub"):
        return claims["sub"]
    return user.subject if user is not None else client.client_id


def audience_claim(resources: list[str]) -> str | list[str] | None:
    if not resources:
        return None
    return resources[0] if len(resources) == 1 else list(resources)


def new_access_token(project: Project, issuer: str, client: Application, user, *, scope: str,
                     audience: list[str], expires_in: int, claims: dict[str, Any] | None = None) -> str:
    if project.token_format != Project.TokenFormat.JWT:
        return secrets.generate(secrets.ACCESS_TOKEN_PREFIX)
    now = int(timezone.now().timestamp())
    body: dict[str, Any] = {"iss": issuer, "sub": subject_for(client, user, claims), "client_id": client.client_id,
                            "scope": scope, "iat": now, "exp": now + int(expires_in)}
    if audience:
        body["aud"] = audience_claim(audience)
    if claims and claims.get("act"):
        body["act"] = claims["act"]
    if claims and claims.get("cnf"):  # RFC 9449 §6.1: DPoP-bound
        body["cnf"] = claims["cnf"]
    if project.email_in_tokens and user is not None:
        body.update(email_claims(user.email, user.email_verified_at))
    return jwt_tokens.encode(project, body)


def email_claims(email: str, verified_at) -> dict[str, Any]:
    """`Project.email_in_tokens`: the end user's email, only once verified; else nothing about email."""
    return {"email": email, "email_verified": True} if email and verified_at is not None else {}


# --- audience (RFC 8707) --------------------------------------------------------------------------
def requested_resources(request) -> list[str]:
    """Every `resource` parameter of an oauthlib request (RFC 8707 allows repeating it)."""
    values = [v for k, v in (getattr(request, "decoded_body", None) or []) if k == "resource"]
    return list(dict.fromkeys(v.strip() for v in values if v and v.strip()))


def resolve_audience(project: Project, requested: list[str], granted: list[str] | None) -> list[str]:
    """The token's audience: what was requested, within what was granted and what the project serves.

    Nothing requested keeps the grant's resource, or else the project's default resource.
    """
    served = set(project.resources)
    for resource in requested:
        if resource not in served:
            raise InvalidTarget("The resource is not served by this issuer.", reason=f"unknown resource {resource!r}")
        if granted and resource not in granted:
            raise InvalidTarget("The resource was not granted.", reason=f"resource {resource!r} beyond the grant")
    if requested:
        return requested
    if granted:
        if not served.issuperset(granted):
            raise InvalidTarget("The granted resource is no longer served.", reason="grant resource retired")
        return list(granted)
    return [project.default_resource] if project.default_resource else []


def bind_audience(request) -> None:
    """oauthlib post_token validator: fix `request.audience` before the token value is generated."""
    if request.grant_type == "authorization_code":
        granted = request.grant_instance.resource
    elif request.grant_type == "refresh_token":
        granted = request.refresh_token_instance.resource
    elif own(request, "device_grant_instance", None) is not None:  # RFC 8628, as a code
        granted = request.device_grant_instance.resource
    else:
        granted = None
    request.audience = resolve_audience(project_of(request), requested_resources(request), granted)


# --- storage --------------------------------------------------------------------------------------
def access_token_row(raw: str, *, client: Application, user, scope: str, expires: datetime,
                     audience: list[str], claims: dict[str, Any] | None = None,
                     source_refresh_token: RefreshToken | None = None) -> AccessToken:
    """An unsaved access token row for `raw`; only its checksum will be stored."""
    claims = dict(claims or {})
    jti = jwt_tokens.jti_of(raw)
    if jti:  # kept for the revocation feed (oauth.tokens.feed): a JWT is checked by its jti, not its checksum
        claims["jti"] = jti
    row = AccessToken(user=user, application=client, scope=scope, expires=expires, resource=list(audience),
                      claims=claims, source_refresh_token=source_refresh_token)
    set_token_value(row, raw)
    return row


def refresh_token_row(raw: str, *, client: Application, user, scope: str, audience: list[str],
                      family: uuid.UUID, access_token: AccessToken | None = None,
                      assertion_iss: str | None = None, dpop_jkt: str = "") -> RefreshToken:
    """An unsaved refresh token row for `raw`; only its checksum will be stored."""
    row = RefreshToken(user=user, application=client, scope=scope, resource=list(audience),
                       access_token=access_token, token_family=family, assertion_iss=assertion_iss or None,
                       dpop_jkt=dpop_jkt)
    set_token_value(row, raw)
    return row


def touch_client(client: Application) -> None:
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > CLIENT_TOUCH_RESOLUTION:
        Application.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
        clients.touched(client)


@transaction.atomic
def mint(project: Project, issuer: str, client: Application, user, *, scopes: list[str], audience: list[str],
         refresh: bool = True, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """Issue an access (and refresh) token outside oauthlib; returns the RFC 6749 §5.1 response body."""
    scope = " ".join(scopes)
    expires_in = project.access_token_ttl
    raw = new_access_token(project, issuer, client, user, scope=scope, audience=audience,
                           expires_in=expires_in, claims=claims)
    access = access_token_row(raw, client=client, user=user, scope=scope, audience=audience, claims=claims,
                              expires=timezone.now() + timedelta(seconds=expires_in))
    body: dict[str, Any] = {"access_token": raw, "token_type": "Bearer", "expires_in": expires_in, "scope": scope}
    if refresh:
        body["refresh_token"] = secrets.generate(secrets.REFRESH_TOKEN_PREFIX)
        rows.write(access, refresh_token_row(body["refresh_token"], client=client, user=user, scope=scope,
                                             audience=audience, family=uuid.uuid4()), link="access_token")
    else:
        rows.write(access)
    touch_client(client)
    # mint's one caller: the JSON token exchange (RFC 8693's grant, by a secret)
    activity.record(project, activity.ISSUED, TOKEN_EXCHANGE, client_id=client.client_id)
    return body


def refresh_token_expired(row: RefreshToken, project: Project) -> bool:
    return row.created + timedelta(seconds=project.refresh_token_ttl) <= timezone.now()


# --- finding and ending tokens --------------------------------------------------------------------
def live_access_token(project: Project, raw: str) -> AccessToken | None:
    """The unexpired access token `raw` of `project` (any of its clients), else None."""
    row = (AccessToken.objects.select_related("application", "user")
           .filter(token_checksum=checksum(raw), application__project=project).first())
    if row is None or row.is_expired() or row.application.disabled_at is not None:
        return None
    return row


# --- introspection cache (RFC 7662) ---------------------------------------------------------------
# One Redis string per token checksum, read on every warm introspection, so it is compact and
# nearly ready to send: b"<project id>[.<n>] <exp> <the JSON answer without iss>", or the tombstone
# b"-" for a token that is not live (unknown, expired, revoked, its client disabled or deleted).
# `.<n>`: the answer ends with n bytes of a verified email's members (`,"email":…,"email_verified":true`),
# cut off at read time unless the project has `email_in_tokens` on, so turning it on or off needs no
# cache change; a changed email or verification drops the person's entries (`refill`).
# It bypasses Django's pickling (infra.cache.get_bytes): keys written here are only
# read here.
INACTIVE_JSON = b'{"active": false}'
_TOMBSTONE = b"-"


@functools.lru_cache(maxsize=1024)  # one entry per issuer (project, custom domain); bounded all the same
def _iss_tail(issuer: str) -> bytes:
    """The answer's last member, `iss`, and its closing brace, as JSON."""
    return b',"iss":' + json.dumps(issuer).encode() + b"}"


def _cache_seconds() -> int:
    return int(getattr(settings, "INTROSPECTION_CACHE_SECONDS", 60))


def cache_key(token_checksum: str) -> str:
    return f"introspection:{token_checksum}"  # not "introspect:", which held pickled entries before


def cached_answer(token_checksum: str) -> bytes | None:
    """The cached entry for a token (see above), or None when nothing is cached."""
    return get_bytes(cache, cache_key(token_checksum))


def forget(checksums: Iterable[str]) -> None:
    """Tombstone cached introspection answers now and again at commit (a reader may refill in between)."""
    keys = [cache_key(c) for c in checksums if c]
    if not keys:
        return

    def bury() -> None:
        set_many_bytes(cache, keys, _TOMBSTONE, _cache_seconds())

    now_and_at_commit(bury)


def forget_across(checksums: Iterable[str], change: Callable[[], bool]) -> bool:
    """`forget` around a change made by one statement outside a transaction: the answers are
    tombstoned before it runs and again once it is committed (at once in autocommit), as `forget`
    does around a transaction's commit. Returns what `change` returns."""
    keys = [cache_key(c) for c in checksums if c]

    def bury() -> None:
        if keys:
            set_many_bytes(cache, keys, _TOMBSTONE, _cache_seconds())

    bury()
    done = change()
    transaction.on_commit(bury)
    return done


# What an answer needs, read in one query without building model instances.
_ANSWER_FIELDS = ("application__project_id", "application__client_id", "application__disabled_at", "user_id",
                  "user__subject", "scope", "expires", "created", "resource", "claims", "user__email",
                  "user__email_verified_at")


def _answer(token_checksum: str) -> QuerySet:
    return AccessToken.objects.filter(token_checksum=token_checksum).values_list(*_ANSWER_FIELDS)[:1]


def _entry(token_checksum: str) -> tuple[bytes, int, dict[str, Any] | None]:
    """The cache entry for a token, how long to keep it, and the answer it encodes (None for the
    tombstone), from the database."""
    found = rows.fetch(AccessToken, _answer, token_checksum)  # compiled once
    if not found:
        return _TOMBSTONE, _cache_seconds(), None
    (project_id, client_id, disabled_at, user_id, subject, scope, expires, created, resource, claims, email,
     verified_at) = found[0]
    if project_id is None or disabled_at is not None or expires is None or timezone.now() >= expires:
        return _TOMBSTONE, _cache_seconds(), None
    exp = int(expires.timestamp())
    body: dict[str, Any] = {
        "active": True, "scope": scope, "client_id": client_id,
        # as subject_for(): a vouched-for `sub`, else the end user's, else the client's own
        "sub": claims.get("sub") or (subject if user_id is not None else client_id), "exp": exp,
        "iat": int(created.timestamp()), "token_type": "Bearer",
    }
    if resource:
        body["aud"] = audience_claim(resource)
    if claims.get("act"):
        body["act"] = claims["act"]
    if claims.get("cnf"):  # RFC 9449 §6.2: a DPoP-bound token says to which key
        body["cnf"], body["token_type"] = claims["cnf"], "DPoP"
    if claims.get("assertion_iss"):  # issued for an enterprise ID-JAG (oauth.grants.jwt_bearer)
        body["assertion_iss"] = claims["assertion_iss"]
    remaining = exp - int(time.time())
    answer = json.dumps(body, separators=(",", ":")).encode()
    extra = json.dumps(email_claims(email or "", verified_at), separators=(",", ":")).encode()[1:-1]
    if extra:
        head = b"%d.%d" % (project_id, len(extra) + 1)
        answer = answer[:-1] + b"," + extra + b"}"
    else:
        head = b"%d" % project_id
    return head + b" %d " % exp + answer, max(1, min(_cache_seconds(), remaining)), body


def _first_use(project: Project, token_checksum: str, answer: dict, exp: int) -> None:
    """An end user's token (its `sub` is not the client's own): its first use, once per token."""
    if answer["sub"] != answer["client_id"]:
        activity.first_use(project, token_checksum, answer["client_id"], answer["sub"], exp - int(time.time()))


def introspection_json(project: Project, issuer: str, raw: str) -> bytes:
    """The RFC 7662 answer for `raw` as seen by `project`, as a JSON document: the active fields
    (with `iss`), or exactly {"active": false}."""
    token_checksum = checksum(raw)
    entry = cached_answer(token_checksum)
    metrics.introspection_result("miss" if entry is None else "hit").inc()
    answer = None  # the decoded answer, only when read from the database now
    if entry is None:
        entry, seconds, answer = _entry(token_checksum)
        add_bytes(cache, cache_key(token_checksum), entry, seconds)  # add, not set: a concurrent revocation's tombstone wins
    if entry == _TOMBSTONE:
        return INACTIVE_JSON
    head, exp, body = entry.split(b" ", 2)
    project_id, _, email_bytes = head.partition(b".")
    if int(project_id) != project.pk or int(exp) <= time.time():
        return INACTIVE_JSON
    if answer is not None:  # read from the database: perhaps this token's first use (the grant timeline)
        _first_use(project, token_checksum, answer, int(exp))
    end = -1 - int(email_bytes) if email_bytes and not project.email_in_tokens else -1
    return body[:end] + _iss_tail(issuer)


def refill(user_id: int) -> None:
    """Drop the cached answers of `user_id`'s live tokens (their email or its verification changed):
    the next introspection reads the row again (called now and at commit, by projects.accounts.changed)."""
    keys = [cache_key(c) for c in AccessToken.objects.filter(user_id=user_id, expires__gt=timezone.now())
            .values_list("token_checksum", flat=True) if c]
    if keys:
        cache.delete_many(keys)
