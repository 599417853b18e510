"""End-to-end harness: our issuer (the server as shipped, mcpauth_service/serve.py) and the example MCP server as real processes on loopback.

The issuer runs against its own PostgreSQL database (`<test database>_e2e`, created and migrated
once per session) and its own Redis key prefix, so the suite's other tests never see its rows.
Projects, operators and end users are made with the operator command line, as a script would.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from tests.servers import (
    PYTHON,
    ROOT,
    free_port,
    recreate_database,
    sibling_database_url,
    start_server,
    stop,
    wait_for_http,
)

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "http://127.0.0.1:33418/callback"  # loopback: any port matches (RFC 8252)
ACCESS_TOKEN_TTL = 4  # seconds: short, so the SDK refreshes on its own after a real wait


def _e2e_database_url() -> str:
    return sibling_database_url("_e2e")


@dataclass
class Issuer:
    """The running issuer: its origin, and the operator command line against its database."""

    url: str
    env: dict[str, str]
    workdir: Path
    operator: str = "e2e-operator@example.com"
    _processes: list[subprocess.Popen] = field(default_factory=list)

    def manage(self, *args: str) -> dict:
        done = subprocess.run([PYTHON, "manage.py", *args, "--json"], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout)

    def shell(self, code: str) -> str:
        done = subprocess.run([PYTHON, "manage.py", "shell", "-v", "0", "-c", code], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            pytest.fail(f"manage.py shell failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def create_project(self, slug: str, resources: list[str], token_format: str = "opaque",
                       access_token_ttl: int | None = None) -> dict:
        project = self.manage("createproject", "--owner", self.operator, "--name", f"E2E {slug}",
                              "--slug", slug, *[arg for r in resources for arg in ("--resource", r)])
        updates = {"token_format": token_format}
        if access_token_ttl:
            updates["access_token_ttl"] = access_token_ttl
        # No command-line flag for these policies (the dashboard sets them): save() so caches follow.
        self.shell(f"from projects.models import Project; p = Project.objects.get(slug={slug!r}); "
                   f"[setattr(p, k, v) for k, v in {updates!r}.items()]; p.save()")
        return project

    def create_end_user(self, slug: str, email: str) -> str:
        """An end user of the project who signs in on the hosted page; returns their `sub`."""
        return self.manage("createenduser", "--project", slug, "--email", email, "--password", PASSWORD)["subject"]


@pytest.fixture(scope="session")
def issuer(tmp_path_factory) -> Iterator[Issuer]:
    workdir = tmp_path_factory.mktemp("e2e")
    database_url = _e2e_database_url()
    recreate_database(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PUBLIC_URL": url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "e2e-" + secrets.token_urlsafe(48),
        "CACHE_KEY_PREFIX": "mcpauth-e2e-" + secrets.token_hex(4),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "MCPAUTH_VAR_DIR": str(workdir / "var"),
        # CIMD documents come from a TLS server on loopback that this harness starts.
        "OUTBOUND_ALLOW_PRIVATE_ADDRESSES": "true",
        "OUTBOUND_CA_BUNDLE": str(workdir / "ca.pem"),
        "PYTHONUNBUFFERED": "1",
    }
    migrate = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    if migrate.returncode != 0:
        pytest.fail(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    process = start_server(env, port, workdir / "issuer.log")
    try:
        server = Issuer(url=url, env=env, workdir=workdir)
        server.manage("createoperator", "--email", server.operator, "--password", PASSWORD)
        yield server
    finally:
        stop(process)


@dataclass
class McpServer:
    url: str
    metadata_url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture
def start_mcp_server(issuer: Issuer) -> Iterator:
    """Starts `examples/mcp_server.py` as its own process; returns its URL once it answers."""
    started: list[McpServer] = []

    def start(issuer_url: str, port: int, *, secret: str | None = None, extra: tuple[str, ...] = ()) -> McpServer:
        env = {**os.environ, "MCPAUTH_CACHE_SECONDS": "0", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        env.pop("MCPAUTH_INTROSPECTION_SECRET", None)
        if secret:
            env["MCPAUTH_INTROSPECTION_SECRET"] = secret
        log = issuer.workdir / f"mcp-{port}.log"
        process = subprocess.Popen(
            [PYTHON, str(ROOT / "examples" / "mcp_server.py"), "--issuer", issuer_url, "--port", str(port), *extra],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        server = McpServer(url=f"http://127.0.0.1:{port}/mcp",
                           metadata_url=f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp",
                           process=process, log=log)
        started.append(server)
        wait_for_http(server.metadata_url, process, log)
        return server

    yield start
    for server in started:
        stop(server.process)


def raw_mcp_post(server_url: str, token: str | None) -> httpx2.Response:
    """One JSON-RPC POST as any HTTP client would send it; the auth decision is in the status."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2025-11-25"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    return httpx2.post(server_url, json=body, headers=headers, timeout=30)


def introspect(issuer_url: str, secret: str, token: str) -> dict:
    response = httpx2.post(f"{issuer_url}/oauth/introspect", data={"token": token},
                           headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# --- a project with its MCP server -------------------------------------------------------------------
@dataclass
class Deployment:
    issuer: str
    slug: str
    server_url: str
    other_resource: str
    registration_secret: str
    introspection_secret: str
    email: str
    subject: str


def deploy(issuer: Issuer, start_mcp_server, slug: str, *, token_format: str = "opaque",
           jwks_only: bool = False) -> Deployment:
    """A project protecting one MCP server; `jwks_only`: the server checks JWTs with no credential."""
    port = free_port()
    server_url = f"http://127.0.0.1:{port}/mcp"
    other_resource = f"http://127.0.0.1:{free_port()}/mcp"
    project = issuer.create_project(slug, [server_url, other_resource], token_format,
                                     access_token_ttl=ACCESS_TOKEN_TTL)
    email = f"eve@{slug}.example"
    subject = issuer.create_end_user(slug, email)
    # Least privilege on the MCP server's side: a secret that can only introspect.
    secret = issuer.manage("createsecret", "--project", slug, "--name", "MCP server",
                           "--permissions", "introspect")["secret"]
    if jwks_only:
        start_mcp_server(project["issuer"], port, extra=("--token-format", "jwt"))
    else:
        extra = ("--check-revocation",) if token_format == "jwt" else ()
        start_mcp_server(project["issuer"], port, secret=secret, extra=extra)
    return Deployment(project["issuer"], slug, server_url, other_resource, project["registration_secret"],
                      secret, email, subject)


@pytest.fixture
def deployment_factory(issuer, start_mcp_server):
    def make(slug: str, token_format: str = "opaque", jwks_only: bool = False) -> Deployment:
        return deploy(issuer, start_mcp_server, slug, token_format=token_format, jwks_only=jwks_only)
    return make



# --- documents served over TLS on loopback (CIMD documents, an enterprise IdP's JWKS) ------------------
def _tls_files(workdir) -> tuple[str, str, str]:
    """A throwaway CA and a certificate for 127.0.0.1/localhost signed by it (the issuer trusts the CA)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpauth e2e CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = workdir / "ca.pem", workdir / "cimd-cert.pem", workdir / "cimd-key.pem"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(ca_path), str(cert_path), str(key_path)


class HttpsDocuments:
    """An HTTPS server on loopback whose CA the issuer trusts: `serve(path, document) -> URL`."""

    def __init__(self, workdir) -> None:
        _, cert, key = _tls_files(workdir)
        documents: dict[str, bytes] = {}
        self.documents = documents

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = documents.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"https://localhost:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, document: dict) -> str:
        self.documents[path] = json.dumps(document).encode()
        return self.url(path)


@pytest.fixture(scope="session")
def https_documents(issuer: Issuer) -> Iterator[HttpsDocuments]:
    """One TLS document server per session (the issuer process was started trusting its CA,
    OUTBOUND_CA_BUNDLE, and loopback addresses)."""
    host = HttpsDocuments(issuer.workdir)
    yield host
    host.httpd.shutdown()


@pytest.fixture(scope="session")
def cimd_host(https_documents: HttpsDocuments):
    """Client metadata documents: `publish(path, doc) -> URL`, the URL being the document's client_id."""

    def publish(path: str, document: dict) -> str:
        return https_documents.serve(path, {**document, "client_id": https_documents.url(path)})

    return publish
