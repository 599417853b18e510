"""The official MCP TypeScript SDK (npm @modelcontextprotocol/sdk, unmodified) under Node against our
issuer and `examples/mcp_server.py`: discovery, registration, authorization and a tool call."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import PASSWORD, REDIRECT_URI, introspect
from .node import converse, node_script
from .user_agent import EndUser

# Real processes share PostgreSQL and Redis with the test run.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.xdist_group("e2e")]  # one issuer (tests/e2e/conftest.py)

TS = Path(__file__).resolve().parent / "ts"


def test_it_serves_the_typescript_sdk_from_discovery_to_a_tool_call(deployment_factory):
    deployment = deployment_factory("e2e-ts")
    issuer, server_url, slug = deployment.issuer, deployment.server_url, deployment.slug
    origin = issuer.rsplit("/p/", 1)[0]

    done = converse(node_script(TS, "@modelcontextprotocol/sdk", "client.mjs", server_url, REDIRECT_URI),
                    EndUser(deployment.email, PASSWORD), "TypeScript client")

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
