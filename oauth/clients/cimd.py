"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document), per project.

An `https` URL used as `client_id` names a JSON document describing the client. We extend the
toolkit's CIMD machinery through its hooks rather than its resolver (which looks clients up
globally, while ours belong to one project each):

- `CIMD_METADATA_FETCHER` is `OutboundMetadataFetcher`, the toolkit's fetcher hook (`fetch(client_id)`
  → `(document, max_age)`), ours end to end: the draft's URL rules (§3), one GET through our one
  SSRF-safe wrapper `infra.outbound` (size cap, no redirects), status 200, a JSON media type, a JSON
  object, and Cache-Control → max-age clamped to CIMD_METADATA_MIN/MAX_AGE_SECONDS.
- A validated document is kept in the shared cache (Redis, or the embedded cache table) for its
  max-age, shared by every project and worker; a failed fetch or invalid document backs the URL
  off for CIMD_FAILURE_BACKOFF_SECONDS (also in the shared cache). At most
  CIMD_MAX_CONCURRENT_FETCHES fetches run at once in a process; one more is refused, not queued.
- Grant types, response types and auth methods the client may not have are dropped, not fatal
  (`oauth.clients.metadata`); every fetch is noted for the project's dashboard (`RegistrationNote`)
  with its outcome in words a developer can act on, and nothing of the body or the address.
- Each project that sees the URL gets its own Application row (`registration_path="cimd"`),
  refreshed when `cimd_expires_at` passes; the last good document is kept over a failed refresh.
"""

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.cimd import CIMDError, is_cimd_client_id
from oauth2_provider.settings import oauth2_settings

from activity import record as activity
from infra import metrics, outbound
from oauth.clients import metadata as client_metadata
from oauth.endpoints.parsing import check_json_value
from oauth.errors import OAuthError
from oauth.models import Application, RegistrationNote

log = logging.getLogger("mcpauth.cimd")

DOCUMENT_CACHE_PREFIX = "cimd:doc:"
BACKOFF_CACHE_PREFIX = "cimd:backoff:"
# The draft forbids shared-secret client authentication for these clients (private_key_jwt is fine).
FORBIDDEN_PROPERTIES = ("client_secret", "client_secret_expires_at")

__all__ = ["CIMDError", "OutboundMetadataFetcher", "Refused", "find", "is_cimd_client_id", "resolve"]


class Refused(CIMDError):
    """No usable client for a CIMD URL. `reason` is shown on the authorization error page: it says
    what a developer can fix, never the fetched body, an internal address or an exception's text."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


def fetch_failed(why: str, detail: str = "") -> Refused:
    return Refused(f"this client's metadata document could not be fetched: {why}", detail)


def check_url(client_id: str) -> None:
    """The draft's rules for a client_id URL (§3), or CIMDError naming the one broken."""
    parts = urlsplit(client_id)
    try:
        parts.port  # noqa: B018 - an out-of-range or non-numeric port raises here
    except ValueError:
        raise CIMDError("client_id URL has an invalid port") from None
    rules = [
        (parts.scheme == "https", "must use the https scheme"),
        (bool(parts.hostname), "must contain a host"),
        (parts.username is None and parts.password is None, "must not contain a username or password"),
        ("#" not in client_id, "must not contain a fragment component"),
        (bool(parts.path), "must contain a path component"),
        (not {".", ".."} & set(parts.path.split("/")), "must not contain dot path segments"),
    ]
    for kept, rule in rules:
        if not kept:
            raise CIMDError(f"client_id URL {rule}")


def is_json_media_type(content_type: str) -> bool:
    """application/json, or a structured syntax suffix +json (RFC 6839 §3.1)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def max_age(cache_control: str | None) -> int:
    """How long to keep a document (RFC 9111 §5.2.2): no-store or no-cache → the minimum, max-age →
    itself, nothing → the maximum; always within CIMD_METADATA_MIN/MAX_AGE_SECONDS."""
    floor, ceiling = oauth2_settings.CIMD_METADATA_MIN_AGE_SECONDS, oauth2_settings.CIMD_METADATA_MAX_AGE_SECONDS
    seconds = ceiling
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            seconds = floor
            break
        if name == "max-age" and value.strip().strip('"').isdigit():
            seconds = int(value.strip().strip('"'))
    return max(floor, min(seconds, ceiling))


def read_document(response: outbound.OutboundResponse, client_id: str) -> tuple[dict, int]:
    """A 200 response's JSON object and how long to keep it; else Refused, in our words (never the
    body, nor the media type it claimed)."""
    if response.status != 200:  # a redirect (3xx) included: never followed
        raise fetch_failed(f"HTTP {response.status} from {client_id}")
    if not is_json_media_type(response.headers.get("Content-Type", "")):
        raise Refused(f"this client's metadata document is not JSON, at {client_id}")
    try:
        document = json.loads(response.body)
    except ValueError:  # JSONDecodeError, and bytes that are not UTF-8/16/32
        raise Refused(f"this client's metadata document is not valid JSON, at {client_id}") from None
    except RecursionError:
        raise Refused(f"this client's metadata document nests too deeply, at {client_id}") from None
    if not isinstance(document, dict):
        raise Refused(f"this client's metadata document must be a JSON object, at {client_id}")
    return document, max_age(response.headers.get("Cache-Control"))


class OutboundMetadataFetcher:
    """The toolkit's CIMD fetcher hook (`CIMD_METADATA_FETCHER`), fetching through `infra.outbound`
    (one guard for all egress)."""

    def fetch(self, client_id: str) -> tuple[dict, int]:
        try:
            check_url(client_id)
        except CIMDError as exc:
            raise Refused(f"the client_id is not a usable metadata document URL: {exc}") from None
        try:
            response = outbound.get(
                client_id,
                max_bytes=oauth2_settings.CIMD_MAX_DOCUMENT_SIZE,
                timeout=oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS,
                headers={"Accept": "application/json"},
            )
        except outbound.OutboundError as exc:
            raise fetch_failed(f"{exc.reason} ({client_id})", str(exc)) from None
        document, seconds = read_document(response, client_id)
        try:
            check_json_value(document)  # nothing stored may later fail to encode (oauth.endpoints.parsing)
        except (OAuthError, RecursionError):
            raise Refused(f"this client's metadata document holds NUL characters, unpaired surrogates or deep "
                          f"nesting, at {client_id}") from None
        return document, seconds


# -- bounding the cost of fetching: a per-URL back-off in the shared cache, a per-process cap ------------
_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@contextlib.contextmanager
def fetch_slot() -> Iterator[bool]:
    """True while holding one of CIMD_MAX_CONCURRENT_FETCHES slots (always, with no cap); False at
    once when all are taken: a flood of distinct URLs fails fast instead of tying up workers."""
    size = oauth2_settings.CIMD_MAX_CONCURRENT_FETCHES
    if not size:
        yield True
        return
    with _slots_lock:
        semaphore = _slots.setdefault(size, threading.BoundedSemaphore(size))
    acquired = semaphore.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            semaphore.release()


def backoff_key(client_id: str) -> str:
    """Hashed: a client_id is untrusted and up to 255 characters, a cache key must stay short."""
    return BACKOFF_CACHE_PREFIX + hashlib.sha256(client_id.encode()).hexdigest()


@dataclass(frozen=True)
class Document:
    metadata: client_metadata.ClientMetadata
    expires_at: float  # epoch seconds


def check_document(document: dict, client_id: str, project) -> client_metadata.ClientMetadata:
    """The draft's rules on top of RFC 7591's: client_id bound to the URL, name and redirects, no secret."""
    if document.get("client_id") != client_id:
        raise CIMDError("the document's client_id does not equal its URL")
    if not isinstance(document.get("client_name"), str) or not document["client_name"].strip():
        raise CIMDError("the document has no client_name")
    if not document.get("redirect_uris"):
        raise CIMDError("the document has no redirect_uris")
    if any(name in document for name in FORBIDDEN_PROPERTIES):
        raise CIMDError("the document carries a client secret")
    # One document serves many projects: scopes outside this project's catalog are dropped, not fatal.
    fields = {k: v for k, v in document.items() if k != "scope"}
    try:
        cleaned = client_metadata.validate(fields, project, "cimd")
    except OAuthError as exc:
        raise CIMDError(f"the document's metadata is invalid: {exc.error}: {exc.description}") from None
    scope = document.get("scope")
    if isinstance(scope, str):
        offered = [s for s in scope.split() if s in project.scope_names]
        if offered:
            cleaned.metadata["scope"] = " ".join(dict.fromkeys(offered))
    return cleaned


def _document_key(client_id: str) -> str:
    return DOCUMENT_CACHE_PREFIX + hashlib.sha256(client_id.encode()).hexdigest()


def load_document(client_id: str, project) -> Document:
    """The URL's validated document: from the cache, else fetched (unless backed off); else Refused."""
    cached = cache.get(_document_key(client_id))
    if cached is not None:
        raw, expires_at = cached
        return Document(checked(raw, client_id, project), expires_at)
    backed_off = cache.get(backoff_key(client_id))
    if backed_off:
        # The first failure's words (older entries hold True), so a developer sees why it still fails.
        why = backed_off if isinstance(backed_off, str) else "this client's metadata document could not be fetched"
        seconds = oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS
        raise Refused(f"{why} (not fetched again for up to {seconds} seconds after a failure)", "backed off")
    with fetch_slot() as acquired:
        if not acquired:
            log.warning("CIMD fetch skipped: in-flight cap reached")
            raise fetch_failed("too many documents are being fetched at once; try again shortly")
        try:
            raw, max_age = oauth2_settings.CIMD_METADATA_FETCHER().fetch(client_id)
            cleaned = checked(raw, client_id, project)
        except Refused as exc:
            log.info("CIMD document refused for %r: %s", client_id, exc)
            cache.set(backoff_key(client_id), exc.reason, oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS)
            note_fetch(project, client_id, outcome_of(exc.reason), exc.reason)
            metrics.cimd_fetches.labels(metric_outcome(outcome_of(exc.reason))).inc()
            raise
        except Exception:  # a client-controlled URL must never turn into a 500
            log.exception("CIMD fetch failed unexpectedly for %r", client_id)
            refusal = fetch_failed("an unexpected error (the server's log has the details)")
            cache.set(backoff_key(client_id), refusal.reason, oauth2_settings.CIMD_FAILURE_BACKOFF_SECONDS)
            note_fetch(project, client_id, "refused", refusal.reason)
            metrics.cimd_fetches.labels("error").inc()
            raise refusal from None
    note_fetch(project, client_id, "ok", describe_narrowing(cleaned))
    metrics.cimd_fetches.labels("ok").inc()
    expires_at = time.time() + max_age
    cache.set(_document_key(client_id), (raw, expires_at), max_age)
    return Document(cleaned, expires_at)


def checked(raw: dict, client_id: str, project) -> client_metadata.ClientMetadata:
    """`check_document`, its sentences (ours, naming fields and rules, never values) made public."""
    try:
        return check_document(raw, client_id, project)
    except Refused:
        raise
    except CIMDError as exc:
        raise Refused(f"{exc} ({client_id})") from None


# -- what the project's developers see of each fetch (the dashboard's recent CIMD fetches) ---------
# The reasons are the Refused sentences: our own words, never a fetched body or a resolved address.
HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def outcome_of(reason: str) -> str:
    """The fetch's outcome in a word, for the dashboard: `HTTP 404`, `timeout` or `refused`."""
    status = HTTP_STATUS.search(reason)
    if status:
        return f"HTTP {status.group(1)}"
    return "timeout" if any(word in reason for word in ("timed out", "timeout", "in time")) else "refused"


def metric_outcome(outcome: str) -> str:
    """`outcome_of`'s word with the status folded in (`HTTP 404` → `http_error`): a bounded label."""
    return "http_error" if outcome.startswith("HTTP ") else outcome


def describe_narrowing(cleaned: client_metadata.ClientMetadata) -> str:
    dropped = [f"{name} {item['value']}" for name, items in cleaned.narrowed.items() for item in items]
    return f"dropped: {', '.join(dropped)}" if dropped else ""


def note_fetch(project, client_id: str, outcome: str, reason: str = "") -> None:
    RegistrationNote.record(project, RegistrationNote.Kind.CIMD_FETCH, subject=client_id, outcome=outcome,
                            reason=reason)


def last_fetch(project, client_id: str) -> RegistrationNote | None:
    """The newest noted fetch of `client_id` for `project`."""
    notes = RegistrationNote.objects.filter(project=project, kind=RegistrationNote.Kind.CIMD_FETCH,
                                            subject=client_id[:255])
    return notes.order_by("-id").first()


def find(project, client_id: str, existing: Application | None = None) -> Application:
    """The project's client for the CIMD URL `client_id`, fetched or refreshed as needed; else Refused."""
    if not project.cimd_enabled:
        raise Refused("this project does not accept Client ID Metadata Documents (an https URL as client_id)")
    if not is_cimd_client_id(client_id):
        raise Refused("unknown client_id")
    if existing is not None and existing.cimd_expires_at and timezone.now() <= existing.cimd_expires_at:
        return existing
    try:
        document = load_document(client_id, project)
    except Refused:
        if existing is not None:
            return existing  # the last good document outlives a failed refresh (the draft: errors aren't cached)
        raise
    return _upsert(project, client_id, document, existing)


def resolve(project, client_id: str, existing: Application | None = None) -> Application | None:
    """`find`, with None for a refusal."""
    try:
        return find(project, client_id, existing)
    except Refused:
        return None


def _upsert(project, client_id: str, document: Document, existing: Application | None) -> Application:
    cleaned = document.metadata
    client = existing or Application(project=project, client_id=client_id)
    cleaned.apply_to(client)  # no secret, never first-party: check_document saw to it
    client.registration_source = Application.RegistrationSource.CIMD
    client.registration_path = Application.Path.CIMD
    client.cimd_expires_at = timezone.now() + timedelta(seconds=max(0, document.expires_at - time.time()))
    try:
        with transaction.atomic():
            client.save()
            if existing is None:
                from projects.models import AuditEvent
                from webhooks import emit

                AuditEvent.record(project, "client.registered", client_id=client_id, path="cimd",
                                  **({"dropped": cleaned.narrowed} if cleaned.narrowed else {}))
                activity.record(project, activity.REGISTERED, "cimd", client_id=client_id)
                emit(project, "client.registered", {"client_id": client_id, "client_name": client.name,
                                                    "registration_path": client.registration_path})
    except IntegrityError:
        # Two first sights of one URL at once: the other request's row wins.
        winner = Application.objects.filter(project=project, client_id=client_id).first()
        if winner is None:
            raise
        return winner
    return client
