"""A passkey: a WebAuthn credential of one operator, as a django-otp device (so that signing in
with it marks the session verified like any other factor)."""

from django.db import models
from django.utils import timezone
from django_otp.models import Device


class Passkey(Device):
    """The public half of a WebAuthn credential (nothing secret is stored) and its signature counter."""

    credential_id = models.BinaryField(max_length=1023)
    public_key = models.BinaryField()  # COSE_Key, as the authenticator sent it
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(Device.Meta):
        constraints = [models.UniqueConstraint(fields=["credential_id"], name="passkey_credential_unique")]

    def verify_token(self, token) -> bool:
        return False  # a passkey answers a challenge (mfa.passkeys), never a typed code
