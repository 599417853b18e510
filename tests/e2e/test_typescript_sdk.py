"""The official MCP TypeScript SDK (npm @modelcontextprotocol/sdk, unmodified) under Node against our
issuer and `examples/mcp_server.py`: discovery, registration, authorization and a tool call."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import PASSWORD, REDIRECT_URI, introspect
from .user_agent import EndUser

# Real processes share PostgreSQL and Redis with the test run.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("e2e")]  # one issuer (tests/e2e/conftest.py)

TS = Path(__file__).resolve().parent / "ts"
NODE_SECONDS = 180


def node_client(server_url: str) -> subprocess.Popen:
    node = shutil.which("node")
    if node is None or not (TS / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail("Node 20 and `npm ci --prefix tests/e2e/ts` are needed (make test and .ci/run do both)")
    return subprocess.Popen([node, str(TS / "client.mjs"), server_url, REDIRECT_URI], cwd=TS, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def converse(process: subprocess.Popen, user: EndUser) -> dict:
    """Answer each authorization request the client prints with the end user's redirect query."""
    watchdog = threading.Timer(NODE_SECONDS, process.kill)
    watchdog.start()
    try:
        for line in process.stdout:
            message = json.loads(line)
            if "authorize" in message:
                query = user.authorize(message["authorize"], REDIRECT_URI)
                process.stdin.write(json.dumps(query) + "\n")
                process.stdin.flush()
            elif "done" in message:
                return message["done"]
            else:
                pytest.fail(f"TypeScript client failed: {message.get('error')}\n{json.dumps(message.get('log'))}")
        pytest.fail(f"TypeScript client ended without an answer:\n{process.stderr.read()}")
    finally:
        watchdog.cancel()
        process.wait(timeout=30)


def test_it_serves_the_typescript_sdk_from_discovery_to_a_tool_call(deployment_factory):
    deployment = deployment_factory("e2e-ts")
    issuer, server_url, slug = deployment.issuer, deployment.server_url, deployment.slug
    origin = issuer.rsplit("/p/", 1)[0]

    done = converse(node_client(server_url), EndUser(deployment.email, PASSWORD))

    whoami = json.loads(done["result"]["content"][0]["text"])
    assert whoami["subject"] == deployment.subject and whoami["resource"] == server_url
    assert whoami["client_id"] == done["clientId"]
    calls = [(e["method"], urlsplit(e["url"]).path, e["status"]) for e in done["log"]]
    assert calls[0] == ("POST", "/mcp", 401)
    assert ("GET", "/.well-known/oauth-protected-resource/mcp", 200) in calls
    assert ("GET", f"/.well-known/oauth-authorization-server/p/{slug}", 200) in calls
    assert ("POST", f"/p/{slug}/api/oauth/register", 201) in calls
    tokens = [e for e in done["log"] if urlsplit(e["url"]).path == f"/p/{slug}/oauth/token"]
    assert [(t["status"], t["form"]["grant_type"], t["form"].get("resource")) for t in tokens] == [
        (200, "authorization_code", server_url)]
    assert any(e["url"].startswith(origin) for e in done["log"])
    (authorization_url,) = done["authorizationUrls"]
    query = parse_qs(urlsplit(authorization_url).query)
    assert authorization_url.startswith(f"{issuer}/oauth/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["resource"] == [server_url]
    assert done["callback"]["iss"] == issuer
    assert introspect(issuer, deployment.introspection_secret, done["accessToken"])["aud"] == server_url
