"""Deployment invariants as Django system checks: an unsafe setting announces itself."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_secret_key(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    key = settings.SECRET_KEY
    if key == settings.INSECURE_SECRET_KEY or key.startswith("django-insecure") or len(key) < 50:
        return [
            Error(
                "SECRET_KEY is missing or weak while DEBUG is off.",
                hint="Set SECRET_KEY to 50+ random characters (python -c 'import secrets; print(secrets.token_urlsafe(50))').",
                id="mcpauth.E001",
            )
        ]
    return []


UPGRADE_HINT = (
    "Set {name} to 50+ random characters. Upgrading a deployment that ran without it? Then it was "
    "SECRET_KEY: set {name} to the current SECRET_KEY value, or {what}. See docs/operations.md, "
    "'Keys and their rotation'."
)


@register()
def check_separate_keys(app_configs, **kwargs):
    """With DATABASE_URL set, DIGEST_KEY and KEY_ENCRYPTION_KEY must be given, never derived from
    SECRET_KEY: otherwise rotating SECRET_KEY would silently invalidate every stored secret and
    every signing key."""
    if not settings.DATABASE_URL:
        return []  # the embedded default keeps its own random keys in var/
    errors = []
    if not settings.DIGEST_KEY:
        errors.append(Error(
            "DIGEST_KEY is not set (required when DATABASE_URL is set).",
            hint=UPGRADE_HINT.format(name="DIGEST_KEY",
                                     what="every project secret, client secret, registration access token and operator API token stops matching"),
            id="mcpauth.E002",
        ))
    if not settings.KEY_ENCRYPTION_KEY:
        errors.append(Error(
            "KEY_ENCRYPTION_KEY is not set (required when DATABASE_URL is set).",
            hint=UPGRADE_HINT.format(name="KEY_ENCRYPTION_KEY",
                                     what="no stored signing key can be decrypted"),
            id="mcpauth.E003",
        ))
    return errors


@register()
def check_outbound_guard(app_configs, **kwargs):
    if settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES and not settings.DEBUG:
        return [
            Warning(
                "OUTBOUND_ALLOW_PRIVATE_ADDRESSES is on: CIMD fetches may reach private networks (SSRF).",
                id="mcpauth.W001",
            )
        ]
    return []


@register()
def check_public_url(app_configs, **kwargs):
    if not settings.DEBUG and settings.PUBLIC_URL.startswith("http://"):
        host = settings.PUBLIC_URL.split("://", 1)[1].split("/", 1)[0].split(":")[0]
        if host not in {"127.0.0.1", "localhost", "[::1]"}:
            return [Warning("PUBLIC_URL is plain http on a non-loopback host.", id="mcpauth.W002")]
    return []


@register()
def check_rate_limits(app_configs, **kwargs):
    if not settings.RATE_LIMITS_ENABLED:
        return [
            Warning(
                "RATE_LIMITS is off: sign-in, sign-up and registration are not throttled.",
                hint="For load tests only. Unset RATE_LIMITS (or set it to on) in production.",
                id="mcpauth.W010",
            )
        ]
    return []


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@register()
def check_email(app_configs, **kwargs):
    """Deployments send verification and reset links by SMTP; plain SMTP only to a local relay."""
    if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        if settings.DATABASE_URL:
            return [Warning(f"EMAIL_URL is not set: verification and password-reset emails are written to "
                            f"{settings.EMAIL_FILE_PATH} instead of being sent.",
                            hint="Set EMAIL_URL=smtp://user:password@host:587 (docs/configuration.md, \"Email\").",
                            id="mcpauth.W020")]
        return []
    if not (settings.EMAIL_USE_TLS or settings.EMAIL_USE_SSL) and settings.EMAIL_HOST not in LOOPBACK:
        return [Warning("EMAIL_URL has tls=off for a host that is not this machine: links and SMTP passwords "
                        "cross the network in clear.", id="mcpauth.W021")]
    return []
