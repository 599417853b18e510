"""Passkeys (WebAuthn Level 2, W3C) as an operator's second factor, checked by py_webauthn.

The relying party is the dashboard's own origin: RP ID = PUBLIC_URL's host name (an IP address is
no valid RP ID, §5.1.3 of the spec: passkeys then stay unavailable), expected origin = PUBLIC_URL's
origin. A challenge is random (py_webauthn, 64 bytes), kept in the shared cache under a key only
this session knows, and spent by the first answer that reads it (`cache.delete` says who took it).
The signature counter must grow (py_webauthn checks it) and is stored with a compare-and-set, so
two answers from one cloned authenticator cannot both pass.
"""

import ipaddress
import json
import secrets
from urllib.parse import urlsplit

import webauthn
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .models import Passkey

CHALLENGE_SECONDS = 300
SESSION_KEY = "mfa.webauthn"


class PasskeyRefused(Exception):
    """The browser's answer did not verify; the reason is for the log only."""


def rp_id() -> str:
    return urlsplit(settings.PUBLIC_URL).hostname or ""


def origin() -> str:
    parts = urlsplit(settings.PUBLIC_URL)
    return f"{parts.scheme}://{parts.netloc}"


def available() -> bool:
    """Passkeys need a domain name (localhost counts) as RP ID and a secure context."""
    host = rp_id()
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return bool(host)


TRANSPORTS = {t.value: t for t in AuthenticatorTransport}


def _descriptor(passkey: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [TRANSPORTS[t] for t in passkey.transports or [] if t in TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=bytes(passkey.credential_id), transports=transports or None)


# --- challenges ---------------------------------------------------------------------------------

def keep_challenge(session, purpose: str, challenge: bytes) -> None:
    key = f"mfa:challenge:{secrets.token_urlsafe(24)}"
    cache.set(key, bytes_to_base64url(challenge), timeout=CHALLENGE_SECONDS)
    session[SESSION_KEY] = {"purpose": purpose, "key": key}


def spend_challenge(session, purpose: str) -> bytes:
    """The challenge this session was given for `purpose`, once; PasskeyRefused otherwise."""
    kept = session.pop(SESSION_KEY, None) or {}
    key = kept.get("key", "")
    value = cache.get(key) if kept.get("purpose") == purpose and key else None
    if value is None or not cache.delete(key):  # another request spent it first
        raise PasskeyRefused("no live challenge for this session")
    return webauthn.base64url_to_bytes(value)


# --- registration (the Security page) ------------------------------------------------------------

def registration_options(session, user) -> str:
    """PublicKeyCredentialCreationOptions as JSON for navigator.credentials.create()."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id(), rp_name="mcpauth", user_name=user.email, user_display_name=user.email,
        user_id=f"mcpauth-operator:{user.pk}".encode(),
        exclude_credentials=[_descriptor(p) for p in Passkey.objects.filter(user=user)],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
    )
    keep_challenge(session, "register", options.challenge)
    return webauthn.options_to_json(options)


def register(session, user, name: str, credential: dict) -> Passkey:
    challenge = spend_challenge(session, "register")
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id(), expected_origin=origin())
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRefused(f"registration: {exc}") from None
    if Passkey.objects.filter(credential_id=verified.credential_id).exists():
        raise PasskeyRefused("registration: credential already registered")
    transports = credential.get("response", {}).get("transports") if isinstance(credential, dict) else None
    return Passkey.objects.create(
        user=user, name=name, confirmed=True, credential_id=verified.credential_id,
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        transports=[t for t in transports or [] if isinstance(t, str) and t in TRANSPORTS],
    )


# --- authentication (the sign-in's second step) --------------------------------------------------

def authentication_options(session, user) -> str:
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(), allow_credentials=[_descriptor(p) for p in Passkey.objects.filter(user=user, confirmed=True)],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    keep_challenge(session, "authenticate", options.challenge)
    return webauthn.options_to_json(options)


def authenticate(session, user, credential: dict) -> Passkey:
    """The operator's passkey that signed this session's challenge; PasskeyRefused otherwise."""
    challenge = spend_challenge(session, "authenticate")
    try:
        parsed = parse_authentication_credential_json(json.dumps(credential))
        passkey = Passkey.objects.filter(user=user, confirmed=True, credential_id=parsed.raw_id).first()
        if passkey is None:
            raise PasskeyRefused("authentication: not one of this operator's passkeys")
        verified = webauthn.verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id(), expected_origin=origin(),
            credential_public_key=bytes(passkey.public_key), credential_current_sign_count=passkey.sign_count)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise PasskeyRefused(f"authentication: {exc}") from None
    # Compare-and-set: the counter read above must still be the stored one.
    won = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
        sign_count=verified.new_sign_count, last_used_at=timezone.now())
    if not won:
        raise PasskeyRefused("authentication: the signature counter moved meanwhile")
    return passkey
