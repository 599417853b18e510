"""Small typed readers for settings from the environment; each fails loudly on a bad value."""

import os
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_url(name: str, default: str = "", schemes: tuple[str, ...] = ("http", "https")) -> str:
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        raise ImproperlyConfigured(f"{name} must be a URL with scheme {'/'.join(schemes)}, got {raw!r}")
    return raw.rstrip("/")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


EMAIL_TLS = {"starttls": (True, False), "off": (False, False)}  # smtp://…?tls=… → (EMAIL_USE_TLS, EMAIL_USE_SSL)


def env_email(name: str, file_path) -> dict:
    """Django's email settings from `name`: `smtp://user:pass@host:587` (STARTTLS, required unless
    `?tls=off`), `smtps://user:pass@host:465` (implicit TLS), `&timeout=10`; unset → messages are
    written as files to `file_path` (Django's filebased backend)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(file_path)}
    parts = urlsplit(raw)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    tls = query.get("tls", "starttls").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(scheme="")
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or (parts.scheme == "smtp" and tls not in EMAIL_TLS):
        raise ImproperlyConfigured(f"{name} must look like smtp://user:password@host:587 (?tls=starttls|off) "
                                   "or smtps://user:password@host:465")
    use_tls, use_ssl = (False, True) if parts.scheme == "smtps" else EMAIL_TLS[tls]
    try:
        timeout = int(query.get("timeout", "10"))
    except ValueError:
        raise ImproperlyConfigured(f"{name}: timeout must be a whole number of seconds") from None
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname, "EMAIL_PORT": port or (465 if use_ssl else 587),
        "EMAIL_HOST_USER": unquote(parts.username or ""), "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls, "EMAIL_USE_SSL": use_ssl, "EMAIL_TIMEOUT": timeout,
    }
