"""Second factors for tests: codes come from pyotp, an implementation independent of django-otp's."""

import base64
import time

import pyotp
from django_otp.plugins.otp_totp.models import TOTPDevice


def enrol_totp(user) -> pyotp.TOTP:
    """A confirmed authenticator app for `user`; the returned generator computes its codes."""
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return generator(base64.b32encode(device.bin_key).decode())


def generator(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret.replace(" ", ""), digits=6, interval=30)


def wrong_code(totp: pyotp.TOTP) -> str:
    """A well-formed code that is none of the three the server accepts now (±1 step)."""
    valid = {totp.at(time.time() + delta) for delta in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444", "555555") if code not in valid)
