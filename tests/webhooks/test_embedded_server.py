"""The embedded default as `make run` serves it (two worker processes, SQLite, no Redis, no Celery
worker): a webhook made with `createwebhook` gets its event from the server's own background
dispatcher, after the request that caused it has been answered."""

import json
import urllib.request

import pytest

from tests.servers import free_port, manage, server_env, start_server, stop
from tests.webhooks.support import Receiver

pytestmark = pytest.mark.xdist_group("webhooks-embedded")

SETUP = """
import json
from io import StringIO
from django.core.management import call_command
from projects.models import Project, User
call_command("migrate", interactive=False, verbosity=0)
owner = User.objects.create_operator("wh@example.com", "correct horse battery staple")
Project.objects.create_project(owner=owner, name="Hooks", slug="hooks", resources=["https://mcp.hooks.example/mcp"])
out = StringIO()
call_command("createwebhook", "--project", "hooks", "--url", RECEIVER, "--events", "client.registered", "--json",
             stdout=out)
print(out.getvalue())
"""


def test_the_embedded_server_delivers_in_the_background(tmp_path):
    receiver = Receiver()
    port = free_port()
    env = server_env(tmp_path, port, "embedded", "", "webhooks") | {
        "OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "true", "WEBHOOK_SWEEP_SECONDS": "1"}
    made = json.loads(manage(env, "shell", "-v", "0", "-c", f"RECEIVER = {receiver.url!r}\n" + SETUP)
                      .strip().splitlines()[-1])
    process = start_server(env, port, tmp_path / "server.log")
    try:
        receiver.hold.clear()  # the receiver answers nothing until released
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/p/hooks/api/oauth/register", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"client_name": "Claude", "redirect_uris": ["http://127.0.0.1/callback"],
                             "token_endpoint_auth_method": "none"}).encode())
        with urllib.request.urlopen(request, timeout=60) as response:  # answered while the receiver holds
            assert response.status == 201
            client_id = json.loads(response.read())["client_id"]
        assert receiver.arrived.wait(60)  # then a worker's dispatcher thread posts it
        receiver.hold.set()
        (got,) = receiver.received
        event = got.verified(made["secret"])
        assert event["type"] == "client.registered" and event["data"]["client_id"] == client_id
    finally:
        stop(process)
        receiver.stop()
