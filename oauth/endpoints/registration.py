"""RFC 7591 dynamic client registration and RFC 7592 client management, per project.

`POST {issuer}/api/oauth/register` and `GET|PUT|DELETE {issuer}/api/oauth/register/{client_id}`.

These are our own function views rather than subclasses of the toolkit's
DynamicClientRegistrationView: its policy is global (DCR_ENABLED, one permission-class list),
its lookups are global (client_id, registration-token checksum), it keeps registration tokens
in the access-token table (where introspection would see them) and it allows one grant type
per client. Ours decide per project, keep the registration access token as a keyed digest on
the client row, and share the client metadata rules of `oauth.clients.metadata` with CIMD.
"""

from urllib.parse import quote

from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from activity import record as activity
from infra import metrics, ratelimit, rows
from oauth.clients import metadata as client_metadata
from oauth.clients.auth import holds_secret, registered_method
from oauth.clients.credentials import require_secret
from oauth.clients.hashers import NO_SECRET
from oauth.clients.metadata import ClientMetadata
from oauth.endpoints.decorator import oauth_endpoint
from oauth.endpoints.parsing import JSON, Body, decode_json
from oauth.errors import InvalidClientMetadata, InvalidToken, OAuthError, TooManyRequests
from oauth.models import Application, RegistrationNote, new_client_id
from projects import secrets as tokens
from projects.models import AuditEvent
from webhooks import emit

# RFC 7591 §3.2.2: a body that is not a JSON object is refused as `invalid_client_metadata`.
REGISTRATION_BODY = Body((JSON,), max_bytes=64 * 1024, malformed=InvalidClientMetadata)
OPEN_CAP_RETRY_AFTER = 3600
MANAGED_PATHS = (Application.Path.OPEN, Application.Path.SECRET)
# RFC 7592 §2.2: values the server controls; a client sending them back changes nothing.
SERVER_FIELDS = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                 "client_id_issued_at")


@oauth_endpoint(methods=("POST",), body=REGISTRATION_BODY)
def register(request: HttpRequest) -> HttpResponse:
    """RFC 7591 §3: register a client; 201 with its information, the secret and token shown once."""
    ratelimit.limit_registration(request)
    data: object = None
    try:
        path = registration_path(request)
        data = read_json(request)
        cleaned = client_metadata.validate(data, request.project, path)
        client, secret, token = create_client(request, cleaned, path)
    except OAuthError as exc:
        note_refusal(request, exc, data)
        raise
    emit(request.project, "client.registered", client_event(client))
    return JsonResponse(client_information(request, client, secret=secret, token=token), status=201)


@oauth_endpoint(methods=("GET", "PUT", "DELETE"), body=REGISTRATION_BODY)
def manage(request: HttpRequest, client_id: str) -> HttpResponse:
    """RFC 7592 §2: read, update or delete a client with its registration access token."""
    client = authenticate_registration(request, client_id)
    if request.method == "PUT":
        return update(request, client)
    if request.method == "DELETE":
        return delete(request, client)
    return JsonResponse(client_information(request, client))


# -- the checks, in the RFCs' order -------------------------------------------------------------

def registration_path(request: HttpRequest) -> str:
    """API.md "Registration": a project secret holding `register`, else open DCR, else 401."""
    project = request.project
    if request.META.get("HTTP_AUTHORIZATION"):
        if not project.secret_registration_enabled:
            raise InvalidToken("Registration with a project secret is turned off.", reason="secret DCR off")
        require_secret(request, "register")
        return Application.Path.SECRET
    if project.open_registration_enabled:
        return Application.Path.OPEN
    raise InvalidToken("Open registration is turned off; a project secret is required.", reason="open DCR off")


def read_json(request: HttpRequest) -> dict:
    """The body, already checked and decoded by `oauth.endpoints.parsing` (size, media type, syntax)
    when it is not empty; an empty one is refused here."""
    checked = getattr(request, "checked_json", None)
    return checked if checked is not None else decode_json(request.body, InvalidClientMetadata)


def authenticate_registration(request: HttpRequest, client_id: str) -> Application:
    """RFC 7592 §2: the bearer must be this client's registration access token, in this project.

    Unknown clients, clients of other projects and wrong tokens are refused alike (401), so the
    answer does not tell whether a client_id exists.
    """
    presented = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = presented.partition(" ")
    token = token.strip()
    client = Application.objects.filter(project=request.project, client_id=client_id,
                                        registration_path__in=MANAGED_PATHS).first()
    stored = client.registration_token_digest if client is not None else ""
    if scheme.lower() != "bearer" or not token or not tokens.matches(token, stored or "-"):
        raise InvalidToken("The registration access token is not valid for this client.",
                           reason="registration token refused")
    assert client is not None
    return client


# -- what the checks lead to ----------------------------------------------------------------------

def new_client_secret(client: Application) -> str:
    """A high-entropy secret; hashed by the fast keyed hasher when the row is saved, shown once."""
    secret = tokens.generate(tokens.CLIENT_SECRET_PREFIX)
    client.client_secret = secret
    client.hash_client_secret = True
    return secret


def new_registration_token(client: Application) -> str:
    token = tokens.generate(tokens.REGISTRATION_TOKEN_PREFIX)
    client.registration_token_digest = tokens.digest(token)
    return token


def create_client(request: HttpRequest, cleaned: ClientMetadata, path: str) -> tuple[Application, str | None, str]:
    """Insert the client and its audit event, an open one only if it takes a slot under the
    project's cap: one statement on PostgreSQL (`rows.write`), refused as a whole at the cap."""
    project = request.project
    # The toolkit's defaults would draw a 128-character secret (and hash it) for a public client too.
    client = Application(project=project, registration_path=path, registration_source=Application.RegistrationSource.DCR,
                         client_id=new_client_id(), client_secret=NO_SECRET)
    cleaned.apply_to(client)
    secret = new_client_secret(client) if cleaned.issues_secret else None
    token = new_registration_token(client)
    event = AuditEvent.new(project, "client.registered", actor=path, client_id=client.client_id,
                           request=request, path=path, fingerprint=client.fingerprint, **dropped(cleaned))
    slot = project.open_client_slot() if path == Application.Path.OPEN else None
    if not rows.write(client, event, guard=slot):
        metrics.rate_limited.labels("open-clients").inc()
        raise TooManyRequests(OPEN_CAP_RETRY_AFTER, "This project accepts no more open registrations for now.",
                              reason=f"open client cap {project.open_client_cap} reached",
                              headers=ratelimit.cap_headers("open-clients", project.open_client_cap, OPEN_CAP_RETRY_AFTER))
    activity.record(project, activity.REGISTERED, path, client_id=client.client_id)
    return client, secret, token


def dropped(cleaned: ClientMetadata) -> dict:
    """What RFC 7591 §3.2.1 narrowing left out, for the audit event (the dashboard reads it there)."""
    return {"dropped": cleaned.narrowed} if cleaned.narrowed else {}


def update(request: HttpRequest, client: Application) -> HttpResponse:
    """RFC 7592 §2.2: a full replacement of the metadata; the registration token is rotated."""
    data = read_json(request)
    if not isinstance(data, dict) or data.get("client_id") != client.client_id:
        raise InvalidClientMetadata("The request must carry this client's client_id.")
    if "client_secret" in data and not _secret_matches(data["client_secret"], client):
        raise InvalidClientMetadata("client_secret does not match the issued secret.")
    fields = {k: v for k, v in data.items() if k not in SERVER_FIELDS}
    cleaned = client_metadata.validate(fields, request.project, client.registration_path)
    had_secret = holds_secret(registered_method(client))
    cleaned.apply_to(client)
    # A client moving to a secret method gets its secret now; one keeping a secret method keeps
    # its own; one leaving them (for none or private_key_jwt) loses it.
    secret = new_client_secret(client) if cleaned.issues_secret and not had_secret else None
    if not cleaned.issues_secret:
        client.client_secret = NO_SECRET
    token = new_registration_token(client)
    with transaction.atomic():
        client.save()
        AuditEvent.record(request.project, "client.updated", actor="registration_access_token",
                          client_id=client.client_id, request=request, **dropped(cleaned))
    return JsonResponse(client_information(request, client, secret=secret, token=token))


def delete(request: HttpRequest, client: Application) -> HttpResponse:
    """RFC 7592 §2.3: the client, its grants and tokens are gone; 204."""
    with transaction.atomic():
        AuditEvent.record(request.project, "client.deleted", actor="registration_access_token",
                          client_id=client.client_id, request=request, path=client.registration_path)
        emit(request.project, "client.deleted", client_event(client))
        client.delete()
    return HttpResponse(status=204)


def client_event(client: Application) -> dict:
    """A client as webhooks describe it: who it is and how it came, never a credential."""
    return {"client_id": client.client_id, "client_name": client.name,
            "registration_path": client.registration_path}


def note_refusal(request: HttpRequest, exc: OAuthError, data: object) -> None:
    """Keep the refusal for the project's dashboard: its error and description (our own words,
    never a secret) and the name the client gave, if any. Rate-limited requests never get here."""
    name = data.get("client_name") if isinstance(data, dict) else None
    RegistrationNote.record(request.project, RegistrationNote.Kind.REFUSAL, subject=name if isinstance(name, str) else "",
                            outcome=exc.error, reason=exc.description)


def _secret_matches(value: object, client: Application) -> bool:
    return isinstance(value, str) and holds_secret(registered_method(client)) and check_password(
        value, client.client_secret)


def client_keys(client: Application) -> dict:
    if client.jwks:
        return {"jwks": client.jwks}
    return {"jwks_uri": client.jwks_uri} if client.jwks_uri else {}


def client_information(request: HttpRequest, client: Application, *, secret: str | None = None,
                       token: str | None = None) -> dict:
    """RFC 7591 §3.2.1 client information response (RFC 7592 §3 for reads and updates)."""
    body = {"client_id": client.client_id, "client_id_issued_at": int(client.created.timestamp())}
    body.update(client.metadata)
    body.update(client_keys(client))
    if holds_secret(registered_method(client)):
        if secret:
            body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # does not expire
    if token:
        body["registration_access_token"] = token
    body["registration_client_uri"] = f"{request.issuer}/api/oauth/register/{quote(client.client_id, safe='')}"
    return body
