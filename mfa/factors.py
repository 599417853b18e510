"""TOTP devices and recovery codes of an operator, and what a second step accepts.

TOTP is django-otp's `TOTPDevice` (RFC 6238, 30 s steps, ±1 step of drift); a code is accepted
once: the device keeps the last time step it verified (`last_t`), and `django_otp.verify_token`
loads the device FOR UPDATE, so two requests with one code cannot both pass. Recovery codes are
the tokens of one django-otp `StaticDevice` per operator, stored as keyed digests instead of the
code itself (a database reader learns nothing usable) and deleted when used.
"""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import django_otp
import segno
from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import Passkey

RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_NAME = "Recovery codes"
TOTP_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Factors:
    """An operator's confirmed second factors."""

    totp: list[TOTPDevice]
    passkeys: list[Passkey]
    recovery_left: int

    @property
    def any(self) -> bool:
        """Recovery codes alone are not a factor: they stand in for one that was lost."""
        return bool(self.totp or self.passkeys)


def factors_of(user) -> Factors:
    recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return Factors(
        totp=list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id")),
        passkeys=list(Passkey.objects.filter(user=user, confirmed=True).order_by("id")),
        recovery_left=recovery.token_set.count() if recovery else 0,
    )


def has_factor(user) -> bool:
    return (TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            or Passkey.objects.filter(user=user, confirmed=True).exists())


def users_with_factor(user_ids) -> set[int]:
    """Which of `user_ids` have an app or a passkey (the Members page shows it)."""
    ids = list(user_ids)
    return {*TOTPDevice.objects.filter(user_id__in=ids, confirmed=True).values_list("user_id", flat=True),
            *Passkey.objects.filter(user_id__in=ids, confirmed=True).values_list("user_id", flat=True)}


# --- TOTP ----------------------------------------------------------------------------------------

def start_totp(user) -> TOTPDevice:
    """A new, unconfirmed TOTP device (a fresh random key); earlier unconfirmed ones are dropped."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def pending_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def totp_secret(device: TOTPDevice) -> str:
    """The key as the base32 text authenticator apps take when typed, in groups of four."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def totp_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI (Key Uri Format) as an inline SVG QR code."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111827", light="#ffffff")


def confirm_totp(device: TOTPDevice, code: str) -> bool:
    """The first right code confirms the device (and is spent like any other)."""
    if not TOTP_CODE.match(code) or django_otp.verify_token(device.user, device.persistent_id, code) is None:
        return False
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    return True


# --- recovery codes ------------------------------------------------------------------------------

def recovery_digest(user, code: str) -> str:
    """What is stored for a recovery code: a keyed digest, cut to django-otp's 16 characters (64 bits)."""
    message = f"mfa-recovery:{user.pk}:{normalize(code)}".encode()
    return hmac.new(settings.DIGEST_KEY.encode(), message, hashlib.sha256).hexdigest()[:16]


def normalize(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


@transaction.atomic
def new_recovery_codes(user) -> list[str]:
    """10 new codes (any earlier ones stop working), shown once: only their digests are kept."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=recovery_digest(user, c)) for c in codes])
    return [f"{c[:5]}-{c[5:]}" for c in codes]


# --- the second step -----------------------------------------------------------------------------

def verify_code(user, code: str) -> Device | None:
    """The device that accepts `code` (a TOTP code, or a recovery code, which is then spent), or None.

    Each device is loaded FOR UPDATE by `django_otp.verify_token`: a code is accepted at most once
    even by two requests at the same instant."""
    code = code.strip()
    if TOTP_CODE.match(code):
        for device in TOTPDevice.objects.filter(user=user, confirmed=True):
            verified = django_otp.verify_token(user, device.persistent_id, code)
            if verified is not None:
                return verified
        return None
    if not 8 <= len(normalize(code)) <= 20:
        return None
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        verified = django_otp.verify_token(user, device.persistent_id, recovery_digest(user, code))
        if verified is not None:
            return verified
    return None


def remove_all(user) -> int:
    """Every second factor and recovery code of `user` (the operator lost them all: `resetmfa`)."""
    removed = 0
    for model in (TOTPDevice, Passkey, StaticDevice):
        removed += model.objects.filter(user=user).delete()[0]
    return removed
