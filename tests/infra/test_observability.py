"""What an operator sees (issue 21): `/metrics` (Prometheus text format, summed across workers) and one
JSON log line per request, with no secret in it.

One real server as shipped (`mcpauth_service.serve`, granian, two worker processes, the embedded
default), started with METRICS_TOKEN and LOG_FORMAT=json. Known numbers of requests are sent on new
connections, several at a time, so both workers answer; the scrape must count every one of them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client.parser import text_string_to_metric_families

from infra.logs import logging_config
from tests.servers import free_port, manage, start_server, stop

ISSUED, BAD_SECRET, UNSUPPORTED, INTROSPECTED = 12, 5, 3, 4
REGISTERED, RATE_LIMITED = 2, 3  # the project allows 2 registrations a minute
PARALLEL = 4
WARM_UP_ROUNDS = 500

SETUP = """
import json
from django.core.management import call_command
from projects.models import Project, User
from tests.conftest import _confidential_client

call_command("migrate", interactive=False, verbosity=0)
owner = User.objects.create_operator("obs@example.com", "correct horse battery staple")
project, secret = Project.objects.create_project(owner=owner, name="Observed", slug="observed",
                                                 resources=["https://mcp.observed.example/mcp"])
project.rate_limits = {"register:project": [[2, 60]]}
project.save()
client = _confidential_client(project)
print(json.dumps({"secret": secret, "client": [client.client_id, client.plain_secret]}))
"""


@dataclass
class Server:
    url: str
    metrics_token: str
    secret: str  # a project secret (introspect)
    client: list[str]
    log: Path
    var: Path

    @property
    def issuer(self) -> str:
        return f"{self.url}/p/observed"


def call(method: str, url: str, *, form: dict | None = None, headers: dict | None = None,
         json_body: dict | None = None) -> tuple[int, Message, bytes]:
    """One request on a new connection; (status, headers, body)."""
    headers = dict(headers or {})
    data = urlencode(form).encode() if form is not None else None
    if json_body is not None:
        data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def token_request(server: Server, form: dict, client: list[str] | None = None) -> tuple[int, Message, bytes]:
    return call("POST", f"{server.issuer}/oauth/token", form=form, headers=basic(*(client or server.client)))


def many(count: int, request) -> list:
    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(lambda _: request(), range(count)))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("observability")
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DIGEST_KEY", "KEY_ENCRYPTION_KEY",
                          "PROMETHEUS_MULTIPROC_DIR")}
    env.update({"PUBLIC_URL": f"http://127.0.0.1:{port}", "DEBUG": "false", "LOG_LEVEL": "INFO",
                "LOG_FORMAT": "json", "METRICS_TOKEN": secrets.token_urlsafe(32),
                "MCPAUTH_VAR_DIR": str(tmp / "var"), "PYTHONUNBUFFERED": "1"})
    made = json.loads(manage(env, "shell", "-v", "0", "-c", SETUP).strip().splitlines()[-1])
    # A stale value file from an earlier run: the server must empty the directory before its workers start.
    (tmp / "var" / "prometheus").mkdir(parents=True)
    (tmp / "var" / "prometheus" / "counter_1.db").write_bytes(b"stale")
    log = tmp / "server.log"
    process = start_server(env, port, log, workers=2)
    try:
        server = Server(url=f"http://127.0.0.1:{port}", metrics_token=env["METRICS_TOKEN"], log=log,
                        var=tmp / "var", **made)
        until_both_workers_answer(server)
        yield server
    finally:
        stop(process)


def until_both_workers_answer(server: Server) -> None:
    """start_server returns once one worker answers; the other may still be importing Django. The
    counted requests below must reach both, so discovery is asked until both have logged an answer."""
    for _ in range(WARM_UP_ROUNDS):
        many(PARALLEL, lambda: call("GET", f"{server.issuer}/.well-known/oauth-authorization-server"))
        if len({line["pid"] for line in request_lines(server)}) == 2:
            return
    pytest.fail("only one worker answered")


def scrape(server: Server) -> dict[tuple[str, tuple], float]:
    status, headers, body = call("GET", f"{server.url}/metrics",
                                 headers={"Authorization": f"Bearer {server.metrics_token}"})
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_it_counts_every_request_of_both_workers(server):
    issued = many(ISSUED, lambda: token_request(server, {"grant_type": "client_credentials"}))
    bad = many(BAD_SECRET, lambda: token_request(server, {"grant_type": "client_credentials"},
                                                 [server.client[0], "mcps_wrong"]))
    unsupported = many(UNSUPPORTED, lambda: token_request(server, {"grant_type": "password", "username": "u",
                                                                   "password": "p"}))
    access_token = json.loads(issued[0][2])["access_token"]
    def introspect():
        return call("POST", f"{server.issuer}/oauth/introspect", form={"token": access_token},
                    headers={"Authorization": f"Bearer {server.secret}"})
    introspected = [introspect()] + many(INTROSPECTED - 1, introspect)  # the first alone: it fills the cache
    registrations = [call("POST", f"{server.issuer}/api/oauth/register", form=None, json_body={
        "client_name": "Counted", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "token_endpoint_auth_method": "none"})[0] for _ in range(REGISTERED + RATE_LIMITED)]
    assert registrations == [201] * REGISTERED + [429] * RATE_LIMITED
    assert [s for s, _, _ in issued] == [200] * ISSUED
    assert [(s, json.loads(b)["error"]) for s, _, b in bad] == [(401, "invalid_client")] * BAD_SECRET
    assert [(s, json.loads(b)["error"]) for s, _, b in unsupported] == [(400, "unsupported_grant_type")] * UNSUPPORTED
    assert [(s, json.loads(b)["active"]) for s, _, b in introspected] == [(200, True)] * INTROSPECTED

    samples = scrape(server)

    # Both workers answered and each wrote its own value files; the stale one of "an earlier run" is gone.
    answered_by = {line["pid"] for line in request_lines(server) if line["endpoint"] == "oauth:token"}
    files = {int(path.stem.rsplit("_", 1)[1]) for path in (server.var / "prometheus").glob("counter_*.db")}
    assert len(answered_by) == 2, answered_by
    assert files == answered_by
    assert value(samples, "mcpauth_tokens_issued_total", project="observed", grant_type="client_credentials") == ISSUED
    assert value(samples, "mcpauth_oauth_errors_total", project="observed", endpoint="oauth:token",
                 error="invalid_client") == BAD_SECRET
    assert value(samples, "mcpauth_oauth_errors_total", project="observed", endpoint="oauth:token",
                 error="unsupported_grant_type") == UNSUPPORTED
    assert value(samples, "mcpauth_oauth_errors_total", project="observed", endpoint="oauth:register",
                 error="rate_limited") == RATE_LIMITED
    assert value(samples, "mcpauth_activity_events_total", project="observed", kind="registered",
                 outcome="open") == REGISTERED
    assert value(samples, "mcpauth_http_requests_total", endpoint="oauth:token", status="200") == ISSUED
    assert value(samples, "mcpauth_http_requests_total", endpoint="oauth:token", status="401") == BAD_SECRET
    assert value(samples, "mcpauth_http_requests_total", endpoint="oauth:token", status="400") == UNSUPPORTED
    assert value(samples, "mcpauth_http_requests_total", endpoint="oauth:introspect", status="200") == INTROSPECTED
    assert value(samples, "mcpauth_http_request_duration_seconds_count",
                 endpoint="oauth:token") == ISSUED + BAD_SECRET + UNSUPPORTED
    assert value(samples, "mcpauth_http_request_duration_seconds_bucket",
                 endpoint="oauth:token", le="+Inf") == ISSUED + BAD_SECRET + UNSUPPORTED
    # The first introspection read the database and filled the shared cache; the others, on either worker,
    # read the cache.
    assert value(samples, "mcpauth_introspection_cache_total", result="miss") == 1
    assert value(samples, "mcpauth_introspection_cache_total", result="hit") == INTROSPECTED - 1
    # Labels are route names, never paths: the project's slug is only ever the `project` label's value.
    assert not any("observed" in v for _, labels in samples for k, v in labels if k != "project")


def test_it_refuses_a_scrape_without_the_metrics_token(server):
    status, headers, body = call("GET", f"{server.url}/metrics")

    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert json.loads(body)["error"] == "invalid_token"


def test_it_refuses_a_scrape_with_a_wrong_token(server):
    status, headers, body = call("GET", f"{server.url}/metrics", headers={"Authorization": "Bearer not-the-token"})

    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="metrics", error="invalid_token"'
    assert b"mcpauth_" not in body


def request_lines(server: Server) -> list[dict]:
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


def test_it_logs_one_json_line_per_request_without_any_secret(server):
    code, verifier, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(48), "mcprt_" + secrets.token_urlsafe(32)
    client_id, client_secret = server.client
    status, headers, _ = call("POST", f"{server.issuer}/oauth/token", form={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "client_id": client_id,
        "client_secret": client_secret, "redirect_uri": "https://backend.example/callback"},
        headers={"X-Request-Id": "trace-code-1"})
    refreshed = token_request(server, {"grant_type": "refresh_token", "refresh_token": refresh},)
    issued = token_request(server, {"grant_type": "client_credentials"})
    access_token = json.loads(issued[2])["access_token"]
    unsafe_id = "<script>" + "x" * 80

    rejected = call("GET", f"{server.issuer}/.well-known/oauth-authorization-server", headers={"X-Request-Id": unsafe_id})

    assert status == 400 and headers["X-Request-Id"] == "trace-code-1"  # an unknown code: invalid_grant
    assert refreshed[0] == 400 and json.loads(refreshed[2])["error"] == "invalid_grant"
    assert rejected[1]["X-Request-Id"] != unsafe_id and len(rejected[1]["X-Request-Id"]) == 32
    lines = request_lines(server)
    by_id = {line["request_id"]: line for line in lines}
    first = by_id["trace-code-1"]
    assert {key: first[key] for key in ("method", "endpoint", "status", "project", "client_id", "error", "level")} == {
        "method": "POST", "endpoint": "oauth:token", "status": 400, "project": "observed", "client_id": client_id,
        "error": "invalid_grant", "level": "info"}
    assert isinstance(first["duration_ms"], float) and "timestamp" in first
    assert by_id[refreshed[1]["X-Request-Id"]]["error"] == "invalid_grant"
    assert by_id[issued[1]["X-Request-Id"]]["error"] is None
    assert by_id[rejected[1]["X-Request-Id"]]["endpoint"] == "oauth:metadata"
    assert unsafe_id not in server.log.read_text()
    everything = server.log.read_text()
    for secret in (client_secret, code, verifier, refresh, access_token, server.metrics_token, server.secret,
                   basic(*server.client)["Authorization"].split()[1]):
        assert secret not in everything


# --- in process ---------------------------------------------------------------------------------

def test_metrics_are_off_while_metrics_token_is_unset(client, settings):
    settings.METRICS_TOKEN = ""

    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_it_refuses_an_unknown_log_format():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of text, json"):
        logging_config("xml", "INFO")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_exception_is_logged_without_the_frames_local_variables(log_format):
    import io
    import logging
    import logging.config

    from django.conf import settings

    secret_value = "mcpat_" + secrets.token_urlsafe(16)  # a local variable of the failing frame
    stream = io.StringIO()
    config = logging_config(log_format, "INFO")
    config["handlers"]["console"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("mcpauth.test").exception("failed with %s", "no secret")
        output = stream.getvalue()
        assert "RuntimeError: boom" in output
        assert secret_value not in output
    finally:
        logging.config.dictConfig(settings.LOGGING)
