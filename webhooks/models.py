"""A project's webhooks and their outbox of deliveries."""

import base64
import ipaddress
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from infra import outbound
from projects import keys
from projects.models import Project

SECRET_PREFIX = "whsec_"  # Standard Webhooks: base64 of the key, after this prefix
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret keeps signing this long after a rotation


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def allowed_schemes() -> tuple[str, ...]:
    """https only; plain http where private addresses are allowed (tests, local development)."""
    return ("https", "http") if settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES else ("https",)


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks, in words safe to show, or None. A literal private address is
    refused at once; a host name is checked again at each delivery (infra.outbound)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "the URL is malformed"
    if parts.scheme not in allowed_schemes() or not parts.hostname:
        return f"the URL must be {' or '.join(allowed_schemes())} with a host"
    if parts.username is not None or parts.password is not None:
        return "the URL carries user information"
    if len(url) > 2000:
        return "the URL is longer than 2000 characters"
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None
    return None if outbound.address_allowed(parts.hostname) else outbound.NOT_ALLOWED


class Webhook(models.Model):
    """An endpoint of the operator's backend, the events it wants and the secret deliveries are
    signed with (encrypted at rest with KEY_ENCRYPTION_KEY: it must be read back to sign)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks", db_index=False)
    url = models.CharField(max_length=2000)
    events = models.JSONField(default=list)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["project", "enabled"], name="webhook_project_enabled")]

    @classmethod
    def create(cls, project: Project, url: str, events: list[str]) -> tuple["Webhook", str]:
        """A new webhook and its secret (plaintext returned once, never stored in clear)."""
        secret = new_secret()
        webhook = cls.objects.create(project=project, url=url, events=sorted(set(events)),
                                     secret_encrypted=keys.encrypt(secret.encode()))
        return webhook, secret

    def rotate_secret(self, now: datetime | None = None) -> str:
        """A new secret; the current one keeps signing (beside it) for ROTATION_OVERLAP."""
        now = now or timezone.now()
        secret = new_secret()
        self.previous_secret_encrypted = self.secret_encrypted
        self.previous_secret_expires_at = now + ROTATION_OVERLAP
        self.secret_encrypted = keys.encrypt(secret.encode())
        self.save(update_fields=["secret_encrypted", "previous_secret_encrypted", "previous_secret_expires_at"])
        return secret

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its overlap lasts."""
        found = [keys.decrypt(self.secret_encrypted).decode()]
        if self.previous_secret_encrypted and self.previous_secret_expires_at and now < self.previous_secret_expires_at:
            found.append(keys.decrypt(self.previous_secret_encrypted).decode())
        return found


keys.encrypted_columns("webhooks.Webhook", "secret_encrypted", "previous_secret_encrypted")


class DeliveryQuerySet(models.QuerySet):
    def due(self, now: datetime) -> "DeliveryQuerySet":
        return self.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now, webhook__enabled=True)


class Delivery(models.Model):
    """One event for one webhook: the outbox row the dispatcher sends, retries and logs."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhook_deliveries", db_index=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64, unique=True)  # msg_…: the `webhook-id` header, kept across retries
    type = models.CharField(max_length=64)
    payload = models.TextField()  # the JSON body exactly as signed and sent, at every attempt
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)  # the receiver's HTTP status
    last_error = models.CharField(max_length=300, blank=True)  # why it failed, or a short excerpt of the answer
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due",
                         condition=models.Q(state="pending")),
            models.Index(fields=["project", "-created_at"], name="webhook_delivery_recent"),
        ]

    def retry_now(self, now: datetime | None = None) -> None:
        """One more attempt as soon as the dispatcher runs (a failed delivery's "Retry now")."""
        self.state = self.State.PENDING
        self.next_attempt_at = now or timezone.now()
        self.save(update_fields=["state", "next_attempt_at"])
