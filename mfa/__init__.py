"""Operators' second factors: TOTP (RFC 6238), passkeys (WebAuthn Level 2) and recovery codes.

django-otp keeps the devices and the verified session (`django_otp.login`, `OTPMiddleware`'s
`request.user.is_verified()`); a passkey is a django-otp `Device` of our own (`models.Passkey`),
checked by py_webauthn. Imports infra/ and projects/ only; the dashboard's pages call it.
"""
