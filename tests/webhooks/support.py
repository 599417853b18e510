"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 (http.server in a thread) that
records every request and answers the statuses it is told, optionally holding each answer until
released. Signatures are checked with the independent `standardwebhooks` package."""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from webhooks import delivery
from webhooks.models import Delivery


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str) -> dict:
        """The body, after `standardwebhooks` verified its signature with `secret` (raises otherwise)."""
        return Verifier(secret).verify(self.body, self.headers)

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self):
        self.received: list[Received] = []
        self.statuses: list[int] = []  # answered in order; 204 once they run out
        self.hold = threading.Event()
        self.hold.set()  # cleared: every answer waits until it is set again
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                receiver.hold.wait(30)
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                answer = b"receiver says no: " + b"x" * 500 if status >= 300 else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/mcpauth"

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.received]

    def stop(self):
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on 127.0.0.1, over plain http
    server = Receiver()
    yield server
    server.stop()


def deliver() -> int:
    """Run the dispatcher once, as the Celery beat task or the embedded thread would."""
    return delivery.deliver_due()


def only(project, type: str) -> Delivery:
    return Delivery.objects.get(project=project, type=type)
