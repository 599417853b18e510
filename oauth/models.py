"""django-oauth-toolkit's models, swapped so every client and token belongs to one project."""

import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from oauth2_provider.generators import generate_client_id, generate_client_secret
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractDeviceGrant,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
    ClientSecretField,
)

from oauth.grants import AUTHORIZATION_CODE, REFRESH_TOKEN, toolkit_grants

CLIENT_ID_CHARS = string.ascii_letters + string.digits


def new_client_id(length: int = 40) -> str:
    """A client_id of the toolkit's default shape (40 of [A-Za-z0-9]) from `secrets`, drawn a
    buffer of random bytes at a time rather than one SystemRandom call per character."""
    chars = ""
    while len(chars) < length:
        # 248 = 4 × 62: bytes below it map evenly onto the 62 characters; the others are dropped.
        chars += "".join(CLIENT_ID_CHARS[b % 62] for b in secrets.token_bytes(length + 8) if b < 248)
    return chars[:length]


class Application(AbstractApplication):
    """An OAuth client of one project, however it got in (CIMD, open DCR, secret DCR, dashboard)."""

    class Path(models.TextChoices):
        CIMD = "cimd", "Client ID Metadata Document"
        OPEN = "open", "Open registration"
        SECRET = "secret", "Registered with a project secret"
        DASHBOARD = "dashboard", "Created in the dashboard"

    # Indexed by the (project, client_id) constraint and the (project, registration_path) index.
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="clients",
                                db_index=False)
    # Unique per project, not globally: one CIMD URL (say, Claude's) is a client of many projects.
    # Always looked up within a project: the (project, client_id) constraint is its index.
    client_id = models.CharField(max_length=255, default=generate_client_id)
    # A keyed digest, compared after the client is found: never looked up, so not indexed
    # (the toolkit's field indexes it).
    client_secret = ClientSecretField(max_length=255, blank=True, default=generate_client_secret,
                                      help_text="Client secret for authentication", verbose_name="client secret")
    registration_path = models.CharField(max_length=16, choices=Path.choices, default=Path.DASHBOARD)
    # The RFC 7591 metadata as registered (client_uri, logo_uri, grant_types, scope, contacts, ...).
    metadata = models.JSONField(default=dict, blank=True)
    first_party = models.BooleanField(default=False)
    disabled_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Same software, name and redirect URIs hash alike: repeated registrations group as one.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    # RFC 7592 registration access token, as a keyed digest (the token itself is shown once).
    registration_token_digest = models.CharField(max_length=64, blank=True, editable=False)
    # RFC 7591 §2: the client's public keys for private_key_jwt, a JWK Set or the URL of one
    # (never both; checked by oauth.clients.keys.public_keyset).
    jwks = models.JSONField(null=True, blank=True)
    jwks_uri = models.CharField(max_length=2000, blank=True, default="")
    # RFC 7591 §3.2.1: what the registration (or CIMD document) asked for and was not given,
    # {field: [{"value": ..., "reason": ...}]}, shown on the dashboard's client page.
    narrowed = models.JSONField(default=dict, blank=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        indexes = [models.Index(fields=["project", "registration_path"], name="client_project_path")]
        constraints = [models.UniqueConstraint(fields=["project", "client_id"], name="client_id_unique_per_project")]

    @property
    def grant_types(self) -> list[str]:
        """The RFC 7591 `grant_types` this client registered (its metadata), else its toolkit grant."""
        registered = self.metadata.get("grant_types") if isinstance(self.metadata, dict) else None
        if registered:
            return list(registered)
        names = [name for name, grant in toolkit_grants().items() if grant == self.authorization_grant_type]
        return names + ([REFRESH_TOKEN] if AUTHORIZATION_CODE in names else [])

    def allows_grant_type(self, *grant_types: str) -> bool:
        """Toolkit hook: a client may hold several grants (code and client_credentials), not just one."""
        mapping = toolkit_grants()
        allowed = {mapping.get(name, name) for name in self.grant_types}
        return any(grant in allowed for grant in grant_types)

    def get_allowed_schemes(self) -> list[str]:
        """Toolkit hook: http(s) plus the private-use schemes (RFC 8252 §7.1) this native client registered."""
        from oauth.clients.redirects import private_use_scheme

        schemes = {private_use_scheme(uri) for uri in self.redirect_uris.split()}
        return ["http", "https", *sorted(s for s in schemes if s)]

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Toolkit hook: exact string comparison with a registered URI, only a loopback port may
        differ (`oauth.clients.redirects.matches`); the toolkit's own check compares parsed, lower-cased hosts."""
        from oauth.clients.redirects import matches

        return isinstance(uri, str) and matches(uri, self.redirect_uris.split())


class Grant(AbstractGrant):
    # Codes are single use: a redeemed code is kept (until it expires and is swept) so that a
    # replay can revoke the token family it issued (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
    redeemed_at = models.DateTimeField(null=True, blank=True)
    token_family = models.UUIDField(null=True, blank=True)
    # OpenID Connect Core §2 `auth_time`: when the end user last authenticated (signed in, or was
    # vouched for by the operator); carried to the refresh tokens the code starts (§12.2).
    auth_time = models.DateTimeField(null=True, blank=True)
    # RFC 9449 §10: the `dpop_jkt` of the authorization request; the code is then redeemed only
    # with a DPoP proof by that key.
    dpop_jkt = models.CharField(max_length=64, blank=True, default="")

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class IDToken(AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class AccessToken(AbstractAccessToken):
    # Extra claims fixed at issuance: `act` (RFC 8693 §4.1) and `sub` when it is not the user's.
    claims = models.JSONField(default=dict, blank=True)

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"


class RefreshToken(AbstractRefreshToken):
    # The scope granted, kept on the refresh token itself so a refresh never depends on (or
    # widens past) an access token row that may have expired and been swept.
    scope = models.TextField(blank=True)
    # RFC 9449 §5: a public client's refresh token is bound to its DPoP key (RFC 7638 thumbprint).
    dpop_jkt = models.CharField(max_length=64, blank=True, default="")
    auth_time = models.DateTimeField(null=True, blank=True)  # of the code the family started from
    # The enterprise issuer whose ID-JAG started the family (oauth.grants.jwt_bearer): every access
    # token refreshed from it carries `assertion_iss` too, whatever became of the earlier tokens.
    assertion_iss = models.CharField(max_length=2000, null=True, blank=True)  # None: no assertion

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"


class DeviceGrant(AbstractDeviceGrant):
    """RFC 8628: one device authorization of one project's client (the toolkit's model, swapped).

    `device_code` and `user_code` hold keyed digests (`projects.secrets.digest`), never the codes;
    each is looked up by digest within the project. Like a code, a device grant is redeemed once
    (`redeemed_at`, set by the statement that stores its tokens) and kept until it expires, so a
    replay can revoke the token family it issued. `polled_at` is the last token request (slow_down).
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    resource = models.JSONField(default=list, blank=True)  # RFC 8707, as on a code
    polled_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    token_family = models.UUIDField(null=True, blank=True)

    class Meta(AbstractDeviceGrant.Meta):
        swappable = "OAUTH2_PROVIDER_DEVICE_GRANT_MODEL"
        constraints = [
            models.UniqueConstraint(fields=["device_code"], name="device_code_digest_unique"),
            models.UniqueConstraint(fields=["project", "user_code"], name="user_code_digest_unique_per_project"),
        ]
        indexes = [models.Index(fields=["project", "expires"], name="device_grant_project_expires")]


# --- Authorization endpoint (issue 4) --------------------------------------------------------------


def _authorization_request_id() -> str:
    return secrets.token_urlsafe(32)


def _ten_minutes_from_now():
    return timezone.now() + AuthorizationRequest.LIFETIME


class AuthorizationRequestQuerySet(models.QuerySet):
    def live(self, project) -> "AuthorizationRequestQuerySet":
        """Pending requests of `project` that have not expired (nothing else may be acted on)."""
        return self.filter(project=project, status=AuthorizationRequest.Status.PENDING, expires_at__gt=timezone.now())

    def expired(self, project, now=None) -> "AuthorizationRequestQuerySet":
        """Requests of `project` past their 10 minutes, answered or not: safe to delete (for the reaper)."""
        return self.filter(project=project, expires_at__lte=now or timezone.now())


class AuthorizationRequest(models.Model):
    """A validated authorization request waiting for the end user (sign-in, handoff, consent).

    `params` holds what the authorize endpoint checked: redirect_uri, scopes, resource, state,
    code_challenge(+method), prompt. It is never read back from the browser.
    """

    LIFETIME = timedelta(minutes=10)

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        COMPLETED = "completed", "Completed"
        DENIED = "denied", "Denied"

    id = models.CharField(primary_key=True, max_length=64, default=_authorization_request_id, editable=False)
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="authorization_requests")
    client = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="authorization_requests")
    params = models.JSONField(default=dict)
    # The end user, once known: vouched for by the operator (handoff) or signed in (hosted).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    claims = models.JSONField(default=dict, blank=True)  # extra claims the operator vouched for
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_ten_minutes_from_now, db_index=True)

    objects = AuthorizationRequestQuerySet.as_manager()

    @property
    def scopes(self) -> list[str]:
        return list(self.params.get("scopes", []))

    @property
    def redirect_uri(self) -> str:
        return self.params["redirect_uri"]

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def resource(self) -> str:
        return self.params["resource"]

    def close(self, status: str, *, unclaimed: bool = False) -> bool:
        """Move a pending request to `status` exactly once; False when it was no longer pending.

        `unclaimed`: only if no end user is attached yet (the operator's handoff decision).
        """
        live = AuthorizationRequest.objects.live(self.project_id).filter(pk=self.pk)
        closed = (live.filter(user__isnull=True) if unclaimed else live).update(status=status)
        if closed:
            self.status = status
        return bool(closed)


class ConsentQuerySet(models.QuerySet):
    def covers(self, user, client, scopes: list[str]) -> bool:
        """Has `user` already allowed `client` every one of `scopes`?"""
        granted = self.filter(user=user, client=client).values_list("scopes", flat=True).first()
        return granted is not None and set(scopes) <= set(granted)


class Consent(models.Model):
    """An end user's remembered "Allow" for one client: the scopes they have agreed to so far."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    client = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="consents")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="one_consent_per_user_client")]

    @classmethod
    def remember(cls, user, client, scopes: list[str]) -> "Consent":
        with transaction.atomic():
            consent, _ = cls.objects.select_for_update().get_or_create(user=user, client=client)
            consent.scopes = sorted(set(consent.scopes) | set(scopes))
            consent.save(update_fields=["scopes", "updated_at"])
        return consent


# --- What happened when clients tried to get in: the dashboard's recent CIMD fetches and refusals ---
class RegistrationNote(models.Model):
    """One recent CIMD fetch or registration refusal, for the project's developers to read.

    Only the newest `KEEP` of each kind are kept per project (older ones are deleted as new ones
    come), and nothing in a note is secret: no fetched body, no internal address, no credential.
    """

    KEEP = 50

    class Kind(models.TextChoices):
        CIMD_FETCH = "cimd_fetch", "CIMD fetch"
        REFUSAL = "refusal", "Registration refused"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=255, blank=True)  # the CIMD URL, or the refused client's name
    outcome = models.CharField(max_length=64)  # ok, HTTP 404, timeout, refused, or the RFC error code
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project", "kind", "-id"], name="registration_note_recent")]

    @classmethod
    def record(cls, project, kind: str, *, subject: str = "", outcome: str, reason: str = "") -> "RegistrationNote":
        from oauth.clients.metadata import printable

        note = cls.objects.create(project=project, kind=kind, subject=printable(subject, 255),
                                  outcome=printable(outcome, 64), reason=printable(reason, 300))
        cls.trim(project, kind)
        return note

    @classmethod
    def trim(cls, project, kind: str) -> None:
        """Delete what is older than the newest KEEP notes of this project and kind."""
        mine = cls.objects.filter(project=project, kind=kind)
        oldest_kept = list(mine.order_by("-id").values_list("id", flat=True)[cls.KEEP - 1:cls.KEEP])
        if oldest_kept:
            mine.filter(id__lt=oldest_kept[0]).delete()

    @classmethod
    def recent(cls, project, kind: str) -> models.QuerySet:
        return cls.objects.filter(project=project, kind=kind).order_by("-id")[: cls.KEEP]
