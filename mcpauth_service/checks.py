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
