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


# --- TLS against a real SMTP server (aiosmtpd with STARTTLS) -------------------------------------

def self_signed(tmp_path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    """An SMTP server that offers STARTTLS and requires it; `.sessions` says whether each mail came over TLS."""
    import ssl

    from aiosmtpd.controller import Controller

    from tests.mail_support import Inbox, free_port

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Recorder(Inbox):
        async def handle_DATA(self, server, session, envelope):
            self.over_tls = session.ssl is not None
            return await super().handle_DATA(server, session, envelope)

    inbox = Recorder()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True)
    controller.start()
    inbox.port, inbox.cert = controller.port, cert
    yield inbox
    controller.stop()


def send_with(settings, monkeypatch, url: str) -> None:
    from django.core.mail import EmailMessage

    for name, value in parsed(monkeypatch, url).items():
        setattr(settings, name, value)
    EmailMessage("Hello", "Body", "noreply@mcpauth.test", ["someone@example.com"]).send()


def test_smtp_urls_send_over_starttls(settings, monkeypatch, tls_server):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert))  # trust the test's own certificate
    send_with(settings, monkeypatch, f"smtp://127.0.0.1:{tls_server.port}")
    assert len(tls_server.to("someone@example.com")) == 1 and tls_server.over_tls


def test_an_untrusted_certificate_stops_the_mail(settings, monkeypatch, tls_server):
    import ssl

    with pytest.raises(ssl.SSLError):
        send_with(settings, monkeypatch, f"smtp://127.0.0.1:{tls_server.port}")
    assert tls_server.messages == []


def test_a_server_without_starttls_gets_nothing_in_clear(settings, monkeypatch, inbox):
    import smtplib

    port = int(settings.EMAIL_PORT)  # the plain test server of tests/mail_support.py
    with pytest.raises(smtplib.SMTPNotSupportedError):
        send_with(settings, monkeypatch, f"smtp://127.0.0.1:{port}")
    assert inbox.messages == []
