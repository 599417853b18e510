"""Email settings from EMAIL_URL (mcpauth_service.env.env_email); without it, files in var/mail."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from mcpauth_service.env import env_email

ROOT = Path(__file__).resolve().parents[2]


def parsed(monkeypatch, url: str) -> dict:
    monkeypatch.setenv("EMAIL_URL", url)
    return env_email("EMAIL_URL", "/var/mail-here")


def test_smtp_uses_starttls_by_default(monkeypatch):
    settings = parsed(monkeypatch, "smtp://apikey:p%40ss%3Aword@smtp.example.com:587")
    assert settings == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587, "EMAIL_HOST_USER": "apikey", "EMAIL_HOST_PASSWORD": "p@ss:word",
        "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 10,
    }


def test_smtps_is_implicit_tls_on_465(monkeypatch):
    settings = parsed(monkeypatch, "smtps://u:p@mail.example.com?timeout=30")
    assert (settings["EMAIL_PORT"], settings["EMAIL_USE_SSL"], settings["EMAIL_USE_TLS"],
            settings["EMAIL_TIMEOUT"]) == (465, True, False, 30)


def test_plain_smtp_only_when_asked(monkeypatch):
    settings = parsed(monkeypatch, "smtp://relay.internal:25?tls=off")
    assert (settings["EMAIL_USE_TLS"], settings["EMAIL_USE_SSL"], settings["EMAIL_HOST_USER"]) == (False, False, "")


@pytest.mark.parametrize("url", ["http://smtp.example.com", "smtp://", "smtp://h:99999", "smtp://h?tls=maybe",
                                 "smtp://h?timeout=soon"])
def test_a_bad_email_url_fails_loudly(monkeypatch, url):
    with pytest.raises(ImproperlyConfigured):
        parsed(monkeypatch, url)


def test_without_email_url_messages_are_files(monkeypatch):
    monkeypatch.delenv("EMAIL_URL", raising=False)
    assert env_email("EMAIL_URL", "/srv/var/mail") == {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": "/srv/var/mail"}


def test_the_embedded_default_writes_mail_to_var(tmp_path):
    """The settings as shipped, in a process of their own: no EMAIL_URL → var/mail/*.log."""
    env = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "DATABASE_URL", "REDIS_URL")}
    env |= {"MCPAUTH_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "mcpauth_service.settings"}
    subprocess.run([sys.executable, "manage.py", "sendtestemail", "someone@example.com"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    [written] = (tmp_path / "mail").iterdir()
    content = written.read_text()
    assert "To: someone@example.com" in content and "Test email from" in content


def test_a_deployment_without_email_url_announces_itself(settings):
    from mcpauth_service import checks

    settings.DATABASE_URL = "postgres://db/mcpauth"
    settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH = "django.core.mail.backends.filebased.EmailBackend", "/x"
    assert [w.id for w in checks.check_email(None)] == ["mcpauth.W020"]


def test_plain_smtp_to_another_host_announces_itself(settings, monkeypatch):
    from mcpauth_service import checks

    for name, value in parsed(monkeypatch, "smtp://mail.example.com:25?tls=off").items():
        setattr(settings, name, value)
    assert [w.id for w in checks.check_email(None)] == ["mcpauth.W021"]
    for name, value in parsed(monkeypatch, "smtp://127.0.0.1:25?tls=off").items():
        setattr(settings, name, value)
    assert checks.check_email(None) == []
