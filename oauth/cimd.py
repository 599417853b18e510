"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), per project.

An `https` URL used as `client_id` names a JSON document describing the client. We extend the
toolkit's CIMD machinery through its hooks rather than its resolver (which looks clients up
globally, while ours belong to one project each):

- `CIMD_METADATA_FETCHER` is `OutboundMetadataFetcher`: the toolkit's document reader
  (status 200, JSON media type, size cap, Cache-Control → max-age clamped to
  CIMD_METADATA_MIN/MAX_AGE_SECONDS) over our one SSRF-safe wrapper, `oauth.outbound`.
- A validated document is cached in Redis for its max-age, shared by every project; a failed
  fetch or invalid document backs the URL off for CIMD_FAILURE_BACKOFF_SECONDS (also Redis).
- Each project that sees the URL gets its own Application row (`registration_path="cimd"`),
  refreshed when `cimd_expires_at` passes; the last good document is kept over a failed refresh.
- Grant types, response types and auth methods the client may not have are dropped, not fatal
  (`oauth.client_metadata`); every fetch is noted for the project's dashboard (`RegistrationNote`)
  with its outcome in words a developer can act on, and nothing of the body or the address.
"""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.cimd import (
    CIMDError,
    SafeMetadataFetcher,
    _backoff_cache_key,
    _fetch_slot,
    _validate_client_id_url,
    is_cimd_client_id,
)
from oauth2_provider.settings import oauth2_settings

from . import client_metadata, outbound
from .errors import OAuthError
from .models import Application, RegistrationNote

log = logging.getLogger("mcpauth.cimd")

DOCUMENT_CACHE_PREFIX = "cimd:doc:"
# The draft forbids shared-secret client authentication for these public clients.
FORBIDDEN_PROPERTIES = ("client_secret", "client_secret_expires_at")

__all__ = ["CIMDError", "OutboundMetadataFetcher", "is_cimd_client_id", "resolve"]


class OutboundMetadataFetcher(SafeMetadataFetcher):
    """The toolkit's CIMD fetcher hook, fetching through `oauth.outbound` (one guard for all egress)."""

    def fetch(self, client_id: str) -> tuple[dict, int]:
        _validate_client_id_url(client_id)  # https, host, path; no userinfo, fragment or dot segments
        try:
            response = outbound.get(
                client_id,
                max_bytes=oauth2_settings.CIMD_MAX_DOCUMENT_SIZE,
                timeout=oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS,
                headers={"Accept": "application/json"},
            )
        except outbound.OutboundError as exc:
            raise CIMDError(str(exc)) from None
        return self._read_document(response)  # a redirect (3xx) is refused there: status != 200


@dataclass(frozen=True)
class Document:
    metadata: client_metadata.ClientMetadata
    expires_at: float  # epoch seconds


def check_document(document: dict, client_id: str, project) -> client_metadata.ClientMetadata:
    """The draft's rules on top of RFC 7591's: client_id bound to the URL, name and redirects, no
    secret; then RFC 7591's, narrowed for a CIMD client (no shared secret, no secret-only grant)."""
    if document.get("client_id") != client_id:
        raise CIMDError("document client_id does not equal the URL")
    if not isinstance(document.get("client_name"), str) or not document["client_name"].strip():
        raise CIMDError("document has no client_name")
    if not document.get("redirect_uris"):
        raise CIMDError("document has no redirect_uris")
    if any(name in document for name in FORBIDDEN_PROPERTIES):
        raise CIMDError("document carries a client secret")
    # One document serves many projects: scopes outside this project's catalog are dropped, not fatal.
    fields = {k: v for k, v in document.items() if k != "scope"}
    try:
        cleaned = client_metadata.validate(fields, project, "cimd")
    except OAuthError as exc:
        raise CIMDError(f"invalid metadata: {exc.error}: {exc.description}") from None
    scope = document.get("scope")
    if isinstance(scope, str):
        offered = [s for s in scope.split() if s in project.scope_names]
        if offered:
            cleaned.metadata["scope"] = " ".join(dict.fromkeys(offered))
    return cleaned


def _document_key(client_id: str) -> str:
    return DOCUMENT_CACHE_PREFIX + hashlib.sha256(client_id.encode()).hexdigest()


def load_document(client_id: str, project) -> Document | None:
    """The URL's validated document: from the cache, else fetched (unless backed off), else None."""
    cached = cache.get(_document_key(client_id))
    if cached is not None:
        raw, expires_at = cached
        try:
            return Document(check_document(raw, client_id, project), expires_at)
        except CIMDError as exc:  # fine for another project, not for this one
            log.info("CIMD document refused for %r: %s", client_id, exc)
            return None
    backoff_key = _backoff_cache_key(client_id)
    if cache.get(backoff_key):
        return None
    with _fetch_slot() as acquired:
        if not acquired:
            log.warning("CIMD fetch skipped: in-flight cap reached")
            return None
        try:
            raw, max_age = oauth2_settings.CIMD_METADATA_FETCHER().fetch(client_id)
            cleaned = check_document(raw, client_id, project)
        except CIMDError as exc:
            log.info("CIMD document refused for %r: %s", client_id, exc)
            cache.set(backoff_key, True, oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS)
            note_fetch(project, client_id, *describe_failure(str(exc)))
            return None
        except Exception:  # a client-controlled URL must never turn into a 500
            log.exception("CIMD fetch failed unexpectedly for %r", client_id)
            cache.set(backoff_key, True, oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS)
            note_fetch(project, client_id, "refused", "the fetch failed")
            return None
    note_fetch(project, client_id, "ok", describe_narrowing(cleaned))
    expires_at = time.time() + max_age
    cache.set(_document_key(client_id), (raw, expires_at), max_age)
    return Document(cleaned, expires_at)


# -- what the project's developers see of each fetch (the dashboard's recent CIMD fetches) ---------
# The reasons come from our own guards and checks; anything else is summarised, never echoed, so
# no fetched body and no resolved (possibly internal) address reaches the page.
PASSED_THROUGH = ("document ", "invalid metadata: ", "client_id URL ")
FAILURES = (
    (re.compile(r"timed out|TimeoutError"), "timeout", "no answer within the fetch timeout"),
    (re.compile(r"non-public"), "refused", "the host does not resolve to a public address"),
    (re.compile(r"could not resolve"), "refused", "the host name does not resolve"),
    (re.compile(r"SSL|CERTIFICATE", re.I), "refused", "TLS failed (is the certificate valid for this host?)"),
    (re.compile(r"could not connect"), "refused", "could not connect to the host"),
    (re.compile(r"larger than|exceeds the maximum"), "refused", "the document is larger than the size limit"),
    (re.compile(r"not JSON \(Content-Type"), "refused", "the document is not served as application/json"),
    (re.compile(r"not valid JSON"), "refused", "the document is not valid JSON"),
    (re.compile(r"must be a JSON object"), "refused", "the document is not a JSON object"),
)


def describe_failure(message: str) -> tuple[str, str]:
    """(outcome, reason) of a failed fetch, for the dashboard: `HTTP 404`, `timeout` or `refused`."""
    status = re.search(r"returned HTTP (\d{3})", message)
    if status:
        return f"HTTP {status.group(1)}", "the URL did not answer 200 (redirects are not followed)"
    for pattern, outcome, reason in FAILURES:
        if pattern.search(message):
            return outcome, reason
    if message.startswith(PASSED_THROUGH):
        return "refused", message.removeprefix("invalid metadata: ")
    return "refused", "the fetch failed"


def describe_narrowing(cleaned: client_metadata.ClientMetadata) -> str:
    dropped = [f"{name} {item['value']}" for name, items in cleaned.narrowed.items() for item in items]
    return f"dropped: {', '.join(dropped)}" if dropped else ""


def note_fetch(project, client_id: str, outcome: str, reason: str = "") -> None:
    RegistrationNote.record(project, RegistrationNote.Kind.CIMD_FETCH, subject=client_id, outcome=outcome,
                            reason=reason)


def last_fetch(project, client_id: str) -> RegistrationNote | None:
    """The newest noted fetch of `client_id` for `project` (say, for an error page explaining why
    the client is unknown: a backed-off URL is not fetched again, its last note still says why)."""
    notes = RegistrationNote.objects.filter(project=project, kind=RegistrationNote.Kind.CIMD_FETCH,
                                            subject=client_id[:255])
    return notes.order_by("-id").first()


def resolve(project, client_id: str, existing: Application | None = None) -> Application | None:
    """The project's client for the CIMD URL `client_id`, fetched or refreshed as needed, or None."""
    if not project.cimd_enabled or not is_cimd_client_id(client_id):
        return None
    if existing is not None and existing.cimd_expires_at and timezone.now() <= existing.cimd_expires_at:
        return existing
    document = load_document(client_id, project)
    if document is None:
        return existing  # the last good document outlives a failed refresh (the draft: errors aren't cached)
    return _upsert(project, client_id, document, existing)


def _upsert(project, client_id: str, document: Document, existing: Application | None) -> Application:
    cleaned = document.metadata
    client = existing or Application(project=project, client_id=client_id)
    cleaned.apply_to(client)  # public and never first-party: check_document saw to it
    client.registration_source = Application.RegistrationSource.CIMD
    client.registration_path = Application.Path.CIMD
    client.cimd_expires_at = timezone.now() + timedelta(seconds=max(0, document.expires_at - time.time()))
    try:
        with transaction.atomic():
            client.save()
            if existing is None:
                from projects.models import AuditEvent

                AuditEvent.record(project, "client.registered", client_id=client_id, path="cimd")
    except IntegrityError:
        # Two first sights of one URL at once: the other request's row wins.
        winner = Application.objects.filter(project=project, client_id=client_id).first()
        if winner is None:
            raise
        return winner
    return client
