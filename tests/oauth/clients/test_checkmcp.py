"""`manage.py checkmcp URL` and the dashboard's "Check an MCP server" form (API.md, operator CLI).

Real peers: the issuer is this test database served over HTTP by pytest-django's `live_server`
(PUBLIC_URL points at it), and the MCP servers are `examples/mcp_server.py` started as processes
on loopback, each configured the way an operator might get it right or wrong. Every fetch goes
through `infra.outbound`; only the tests that need loopback relax its private-address guard.
"""

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from projects.models import Project, User
from tests.conftest import PASSWORD
from tests.servers import PYTHON, ROOT, free_port, stop, wait_for_http

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("checkmcp")]  # its MCP servers: once

SLUG = "checked"


class McpServers:
    """Example MCP servers, one per configuration, started on first use and kept for the module."""

    def __init__(self, tmp_path_factory, issuer: str):
        self.issuer, self.dir = issuer, tmp_path_factory.mktemp("mcp")
        self.ports = {name: free_port() for name in ("good", "foreign")}
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/mcp"

    def start(self, name: str) -> str:
        if name not in self.processes:
            log = self.dir / f"{name}.log"
            env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
            env.pop("MCPAUTH_INTROSPECTION_SECRET", None)
            process = subprocess.Popen(
                [PYTHON, str(ROOT / "examples" / "mcp_server.py"), "--issuer", self.issuer,
                 "--port", str(self.ports[name])],
                cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
            self.processes[name] = process
            wait_for_http(f"http://127.0.0.1:{self.ports[name]}/.well-known/oauth-protected-resource/mcp",
                          process, log)
        return self.url(name)

    def stop(self):
        for process in self.processes.values():
            stop(process)


@pytest.fixture(scope="module")
def mcp_servers(live_server, tmp_path_factory):
    servers = McpServers(tmp_path_factory, f"{live_server.url}/p/{SLUG}")
    yield servers
    servers.stop()


@pytest.fixture
def project(live_server, settings, mcp_servers):
    """A project whose issuer is the live server, protecting the good server's URL (not the foreign one's)."""
    settings.PUBLIC_URL = live_server.url
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the MCP servers and the issuer are on 127.0.0.1
    owner = User.objects.create_operator("olga@example.com", PASSWORD)
    project, _ = Project.objects.create_project(owner=owner, name="Checked", slug=SLUG,
                                                resources=[mcp_servers.url("good")])
    return project


def checkmcp(*args: str) -> tuple[dict, bool]:
    """Run the command in-process; (its JSON, whether it exited 0)."""
    out = StringIO()
    try:
        call_command("checkmcp", *args, "--json", stdout=out)
        succeeded = True
    except CommandError as exc:
        assert exc.returncode == 1
        succeeded = False
    return json.loads(out.getvalue()), succeeded


def errors(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["level"] == "error"]


# -- the command ---------------------------------------------------------------------------------------

def test_it_finds_a_correct_server_ready(project, mcp_servers):
    url = mcp_servers.start("good")
    report, succeeded = checkmcp(url)  # no --project: the one the server names
    assert succeeded and report["ok"] is True and errors(report) == []
    messages = " | ".join(f["message"] for f in report["findings"])
    assert f"names this project's issuer {project.issuer}" in messages
    assert f"resource is {url}, the URL clients use" in messages
    assert "scopes_supported (mcp:tools) are all in the project's catalog" in messages
    origin = project.issuer.removesuffix(f"/p/{SLUG}")
    for location in (f"{origin}/.well-known/oauth-authorization-server/p/{SLUG}",
                     f"{origin}/.well-known/openid-configuration/p/{SLUG}",
                     f"{project.issuer}/.well-known/openid-configuration"):
        assert f"The issuer's metadata answers at {location}." in messages
    assert all(set(f) == {"level", "message", "fix"} for f in report["findings"])


@pytest.fixture
def hand_written(project):
    """An MCP server written by hand (its metadata set per test), on loopback; in the project's resources."""
    server = HandWrittenServer()
    project.resources = [*project.resources, server.url]
    project.save()
    yield server
    server.stop()


def test_it_reports_an_issuer_with_a_trailing_slash_and_the_fix(project, hand_written):
    url = hand_written.publish(authorization_servers=[f"{project.issuer}/"])
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded and report["ok"] is False
    [error] = errors(report)
    assert error["message"] == (f"authorization_servers names '{project.issuer}/', but the issuer is "
                                f"'{project.issuer}': clients compare issuers character for character.")
    assert error["fix"] == f'Use exactly "{project.issuer}" in authorization_servers (no trailing slash).'


def test_it_finds_the_project_from_a_near_miss_issuer_too(project, hand_written):
    report, succeeded = checkmcp(hand_written.publish(authorization_servers=[f"{project.issuer}/"]))
    assert not succeeded and "character for character" in errors(report)[0]["message"]


def test_it_reports_a_server_that_names_another_issuer(project, hand_written):
    url = hand_written.publish(authorization_servers=["https://auth.elsewhere.example"])
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded
    [error] = errors(report)
    assert error["message"] == (f"authorization_servers (https://auth.elsewhere.example) does not name project "
                                f"{SLUG}'s issuer {project.issuer}.")
    assert error["fix"] == f'Put exactly "{project.issuer}" in authorization_servers.'
    assert sum("The issuer's metadata answers at" in f["message"] for f in report["findings"]) == 3


def test_without_a_project_it_says_none_is_named(project, hand_written):
    report, succeeded = checkmcp(hand_written.publish(authorization_servers=["https://auth.elsewhere.example"]))
    assert not succeeded
    assert errors(report)[0]["message"] == ("authorization_servers (https://auth.elsewhere.example) names no "
                                            "project of this server.")


def test_it_reports_issuer_metadata_that_clients_cannot_reach(project, hand_written, settings):
    """PUBLIC_URL names an origin where nothing answers (a proxy not routing mcpauth, say)."""
    settings.PUBLIC_URL = f"http://127.0.0.1:{free_port()}"
    url = hand_written.publish()
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded
    issuer = f"{settings.PUBLIC_URL}/p/{SLUG}"
    assert [e["message"] for e in errors(report)] == [
        f"The issuer's metadata is not reachable at {location} (could not connect)."
        for location in (f"{settings.PUBLIC_URL}/.well-known/oauth-authorization-server/p/{SLUG}",
                         f"{settings.PUBLIC_URL}/.well-known/openid-configuration/p/{SLUG}",
                         f"{issuer}/.well-known/openid-configuration")]


def test_it_reports_a_resource_that_is_not_the_url_and_unknown_scopes(project, hand_written):
    url = hand_written.publish(resource=hand_written.url + "/", scopes_supported=["mcp:tools", "admin"])
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded
    assert [e["message"] for e in errors(report)] == [
        f"resource is '{url}/', not the URL clients use ({url}); clients refuse the metadata (RFC 9728 §3.3).",
        f"scopes_supported has scopes project {SLUG} does not offer: admin; clients asking for them get "
        "invalid_scope.",
    ]


def test_it_warns_when_the_401_names_no_metadata(project, hand_written):
    url = hand_written.publish(challenge="Bearer")
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert succeeded and report["ok"] is True  # clients still find it at the well-known location
    assert report["findings"][0]["level"] == "warning"
    assert "no resource_metadata" in report["findings"][0]["message"]


def test_it_reports_a_resource_the_project_does_not_protect(project, mcp_servers):
    url = mcp_servers.start("foreign")
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded
    [error] = errors(report)
    assert error["message"] == (f"{url} is not one of project {SLUG}'s resources: clients asking for it get "
                                "invalid_target.")
    assert error["fix"].startswith(f"Add {url} to the project's resources")


def test_it_reports_an_unreachable_server_with_its_http_status(project, mcp_servers):
    url = mcp_servers.start("good").replace("/mcp", "/nothing-here")
    report, succeeded = checkmcp(url, "--project", SLUG)
    assert not succeeded
    assert errors(report)[0]["message"] == "A request without a token got HTTP 404, not 401."


def test_it_reports_a_redirect_instead_of_a_401(project, mcp_servers):
    report, succeeded = checkmcp(mcp_servers.start("good") + "/", "--project", SLUG)  # the SDK redirects /mcp/
    assert not succeeded
    assert errors(report)[0]["message"] == "A request without a token was redirected (HTTP 307), not answered 401."


def test_it_reports_a_server_that_does_not_answer(project):
    report, succeeded = checkmcp(f"http://127.0.0.1:{free_port()}/mcp", "--project", SLUG)
    assert not succeeded
    assert errors(report)[0]["message"] == "The MCP server could not be reached: could not connect."


def test_it_refuses_an_unknown_project(project):
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("checkmcp", "https://mcp.example.com/mcp", "--project", "nope")


@pytest.mark.postgres
def test_it_prints_findings_and_exits_non_zero_from_the_command_line(project, mcp_servers, live_server):
    """The shipped entry point, as a process on this test's (committed) database: exit 1 and a fix."""
    url = mcp_servers.start("foreign")
    database = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}"))
    env = {**os.environ, "DATABASE_URL": database, "PUBLIC_URL": live_server.url,
           "OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "true"}
    done = subprocess.run([PYTHON, "manage.py", "checkmcp", url], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert f"Checking {url} against project {SLUG}" in done.stdout
    assert f"ERROR   {url} is not one of project {SLUG}'s resources" in done.stdout
    assert f"fix: Add {url} to the project's resources" in done.stdout


# -- the dashboard form ----------------------------------------------------------------------------------

@pytest.fixture
def operator(client, project):
    assert client.login(username="olga@example.com", password=PASSWORD)
    return client


def test_the_project_page_has_the_form(operator, project):
    html = operator.get(f"/projects/{SLUG}").content.decode()
    assert "<h2>Check an MCP server</h2>" in html
    assert f'action="/projects/{SLUG}/check-mcp"' in html


def test_the_form_shows_a_correct_server_ready(operator, project, mcp_servers):
    response = operator.post(f"/projects/{SLUG}/check-mcp", {"url": mcp_servers.start("good")})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="check-verdict">Ready for MCP clients' in html
    assert '<span class="badge danger">error</span>' not in html


def test_the_form_names_the_http_status_and_no_internal_address(operator, project, settings):
    """With the guard on (as in production), a host that resolves to loopback is refused without
    saying where it resolves; an answer's status is named, its body never shown."""
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    port = free_port()
    response = operator.post(f"/projects/{SLUG}/check-mcp", {"url": f"http://localhost:{port}/mcp"})
    html = response.content.decode()
    assert "The MCP server could not be reached: refused: the host is not a public address." in html
    assert "127.0.0.1" not in html and "::1" not in html


def test_the_form_names_the_status_of_a_failing_server(operator, project):
    body = b"<html>internal stack trace at 10.1.2.3</html>"
    server = _answering(502, body)
    try:
        response = operator.post(f"/projects/{SLUG}/check-mcp",
                                 {"url": f"http://127.0.0.1:{server.server_address[1]}/mcp"})
    finally:
        server.shutdown()
        server.server_close()
    html = response.content.decode()
    assert "A request without a token got HTTP 502, not 401." in html
    assert "10.1.2.3" not in html and "stack trace" not in html


def test_another_operators_project_is_not_found(client, project, mcp_servers):
    User.objects.create_operator("mallory@example.com", PASSWORD)
    assert client.login(username="mallory@example.com", password=PASSWORD)
    response = client.post(f"/projects/{SLUG}/check-mcp", {"url": mcp_servers.url("good")})
    assert response.status_code == 404


def test_the_form_needs_a_url(operator, project):
    html = operator.post(f"/projects/{SLUG}/check-mcp", {"url": ""}).content.decode()
    assert "Give the MCP server&#x27;s URL." in html


class HandWrittenServer:
    """401 on /mcp and the protected-resource metadata at its path-inserted location, as published."""

    def __init__(self):
        self.document: dict = {}
        self.challenge = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/mcp":
                    self.answer(401, b"", {"WWW-Authenticate": server.challenge})
                elif self.path == "/.well-known/oauth-protected-resource/mcp":
                    self.answer(200, json.dumps(server.document).encode(), {"Content-Type": "application/json"})
                else:
                    self.answer(404, b"", {})

            def answer(self, status, body, headers):
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mcp"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, challenge: str | None = None, **fields) -> str:
        metadata_url = self.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        self.challenge = challenge or f'Bearer resource_metadata="{metadata_url}"'
        self.document = {"resource": self.url, "authorization_servers": [f"{settings.PUBLIC_URL}/p/{SLUG}"],
                         "scopes_supported": ["mcp:tools"], "bearer_methods_supported": ["header"], **fields}
        return self.url

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _answering(status: int, body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
