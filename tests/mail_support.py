"""A real SMTP server for the email tests (aiosmtpd on 127.0.0.1), EMAIL_URL pointing at it.

Celery runs its tasks in the test's own process (`task_always_eager`), so a task sees the test's
rows; the task, Django's SMTP backend and the server are the real ones.
"""

import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from urllib.parse import urlsplit

import pytest

from mcpauth_service.celery import app as celery_app
from mcpauth_service.env import env_email

LINK = re.compile(r"https?://\S+")


class Inbox:
    """Every message the server accepted, parsed."""

    def __init__(self):
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def last_link(self, address: str) -> str:
        """The link in the newest message to `address`, as a path with its query (for the test client)."""
        found = self.to(address)
        assert found, f"no email to {address}"
        url = LINK.search(found[-1].get_content())[0]
        parts = urlsplit(unescape(url))
        return f"{parts.path}?{parts.query}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def eager_celery():
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def inbox(settings, monkeypatch, tmp_path, eager_celery):
    """An SMTP server started for the test; the settings are what EMAIL_URL=smtp://…?tls=off gives."""
    from aiosmtpd.controller import Controller

    mailbox = Inbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("EMAIL_URL", f"smtp://mailer:s%40cret@127.0.0.1:{controller.port}?tls=off")
    for name, value in env_email("EMAIL_URL", tmp_path).items():
        setattr(settings, name, value)
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""  # the test server offers no AUTH
    settings.EMAIL_FROM = "Mail Test <noreply@mcpauth.test>"
    yield mailbox
    controller.stop()
