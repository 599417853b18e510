"""mcpauth_rs against the server as shipped (two workers, PostgreSQL and Redis), set up through the
contract's command line: a JWT revoked over HTTP is listed by the feed, whichever worker answers, and
the resource server refuses it after its next poll."""

from __future__ import annotations

import json

import pytest

from mcpauth_rs import ResourceServer, TokenRejected
from tests.e2e.test_multiworker import basic, call
from tests.servers import free_port, manage, server_env, start_server, stop

pytestmark = [pytest.mark.xdist_group("revocation_feed_server"), pytest.mark.postgres, pytest.mark.redis]

MCP = "https://mcp.feed.example/mcp"


@pytest.fixture
def issuer(tmp_path):
    port = free_port()
    env = server_env(tmp_path, port, "production", "_feed_server", "feed")
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "createoperator", "--email", "feed@example.com", "--password", "correct horse battery staple")
    project = json.loads(manage(env, "createproject", "--owner", "feed@example.com", "--name", "Feed", "--slug",
                                "feed", "--resource", MCP, "--json"))
    manage(env, "setproject", "feed", "--set", "token_format=jwt", "--json")
    client = json.loads(manage(env, "createclient", "--project", "feed", "--name", "Backend", "--redirect-uri",
                               "https://backend.example/cb", "--confidential", "--grant", "client_credentials",
                               "--json"))
    process = start_server(env, port, tmp_path / "server.log")
    try:
        yield {"issuer": project["issuer"], "secret": project["registration_secret"],
               "client": [client["client_id"], client["client_secret"]]}
    finally:
        stop(process)


def test_a_revoked_jwt_is_refused_after_the_next_poll(issuer):
    status, body = call("POST", f"{issuer['issuer']}/oauth/token", form={"grant_type": "client_credentials"},
                        headers=basic(issuer["client"]))
    assert status == 200, body
    token = body["access_token"]
    rs = ResourceServer(issuer["issuer"], MCP, token_format="jwt", revocation_feed_secret=issuer["secret"],
                        revocation_poll_seconds=3600)
    assert rs.verify(token).client_id == issuer["client"][0]
    metadata = call("GET", f"{issuer['issuer']}/.well-known/oauth-authorization-server")[1]
    assert metadata["mcpauth_revocation_feed_endpoint"] == f"{issuer['issuer']}/oauth/revocations"

    revoked = call("POST", f"{issuer['issuer']}/oauth/revoke", form={"token": token}, headers=basic(issuer["client"]))
    assert revoked[0] == 200
    assert rs.verify(token).client_id == issuer["client"][0]  # within the poll interval: not known yet
    rs.revocations.poll()

    with pytest.raises(TokenRejected, match="revocation feed"):
        rs.verify(token)
    # The feed is read from the database by whichever worker answers: read it again on new connections.
    for _ in range(2):
        status, feed = call("GET", f"{issuer['issuer']}/oauth/revocations",
                            headers={"Authorization": f"Bearer {issuer['secret']}"})
        assert status == 200 and len(feed["revoked"]) == 1
