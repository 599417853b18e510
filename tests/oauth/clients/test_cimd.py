"""Client ID Metadata Documents, served by a REAL local HTTPS server started in the test.

CIMD needs https URLs, so the fixture generates a throwaway CA and a certificate for 127.0.0.1
with `cryptography`, serves documents with `http.server` over TLS in a thread, and trusts that
CA through the explicit test setting OUTBOUND_CA_BUNDLE. The private-address guard is relaxed
through OUTBOUND_ALLOW_PRIVATE_ADDRESSES only in the tests that need to reach 127.0.0.1; the
tests of the guard itself leave it on. Nothing of our own stack is mocked.
"""

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY

from infra import outbound
from oauth.clients.cimd import _document_key, backoff_key
from oauth.clients.lookup import load_client
from oauth.models import Application
from projects.models import AuditEvent

# -- the local TLS server -------------------------------------------------------------------------------


def _cert_pair(tmp_path):
    """A CA and a leaf for 127.0.0.1/localhost signed by it; returns (ca_pem_path, leaf_cert, leaf_key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpauth test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class DocumentServer:
    """Routes path -> (status, headers, body); counts requests per path; `release` ends slow answers."""

    def __init__(self, tmp_path):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        self.ca_path, cert, key = _cert_pair(tmp_path)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path == "/slow.json":
                    server.release.wait(30)
                    return
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, document, status: int = 200, headers: dict | None = None) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = (status, headers or {}, body)
        return self.url(path)

    def serve_client(self, path: str = "/client.json", headers: dict | None = None, **fields) -> str:
        url = self.url(path)
        document = {"client_id": url, "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none", **fields}
        return self.serve(path, {k: v for k, v in document.items() if v is not None}, headers=headers)

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def docs(tmp_path, settings):
    server = DocumentServer(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the server is on 127.0.0.1
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "CIMD_FETCH_TIMEOUT_SECONDS": 1}
    yield server
    server.stop()


def assert_refused(project, url):
    assert load_client(project, url) is None
    assert not Application.objects.filter(project=project, client_id=url).exists()


# -- the happy path -----------------------------------------------------------------------------------------

def test_it_resolves_a_cimd_client_from_its_document(docs, project_a):
    url = docs.serve_client(client_uri="https://claude.ai", logo_uri="https://claude.ai/logo.png", scope="mcp:tools")
    client = load_client(project_a, url)
    assert client is not None
    assert client.client_id == url
    assert client.project == project_a
    assert client.registration_path == "cimd" and client.registration_source == "cimd"
    assert client.client_type == "public" and client.first_party is False
    assert client.name == "Claude"
    assert client.redirect_uris == "https://claude.ai/api/mcp/auth_callback"
    assert client.metadata["client_uri"] == "https://claude.ai" and client.metadata["scope"] == "mcp:tools"
    assert client.redirect_uri_allowed("https://claude.ai/api/mcp/auth_callback")
    assert AuditEvent.objects.get(project=project_a, kind="client.registered").detail["path"] == "cimd"


def test_it_fetches_once_and_serves_every_project_from_the_cache(docs, project_a, project_b):
    url = docs.serve_client()
    first = load_client(project_a, url)
    assert load_client(project_a, url).pk == first.pk
    other = load_client(project_b, url)
    assert other.project == project_b and other.pk != first.pk
    assert docs.hits["/client.json"] == 1
    assert cache.get(_document_key(url)) is not None  # in Redis, shared by every worker


def test_it_refetches_when_the_cached_document_expires(docs, project_a):
    url = docs.serve_client()
    client = load_client(project_a, url)
    docs.serve_client(client_name="Claude (new)")
    cache.delete(_document_key(url))
    Application.objects.filter(pk=client.pk).update(cimd_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    refreshed = load_client(project_a, url)
    assert refreshed.pk == client.pk and refreshed.name == "Claude (new)"
    assert docs.hits["/client.json"] == 2
    assert Application.objects.filter(project=project_a, client_id=url).count() == 1


def test_it_keeps_the_last_good_document_when_a_refresh_fails(docs, project_a):
    url = docs.serve_client()
    client = load_client(project_a, url)
    docs.serve("/client.json", {"error": "down"}, status=503)
    cache.delete(_document_key(url))
    Application.objects.filter(pk=client.pk).update(cimd_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert load_client(project_a, url).name == "Claude"


@pytest.mark.parametrize("cache_control,expected", [
    ("max-age=600", 600),          # honoured
    ("public, max-age=5", 300),    # raised to the minimum
    ("max-age=9999999", 86400),    # lowered to the maximum
    ("no-store", 300),
    (None, 86400),                 # no header: the maximum
])
def test_it_caches_within_bounds_honouring_cache_control(docs, project_a, cache_control, expected):
    url = docs.serve_client(headers={"Cache-Control": cache_control} if cache_control else {})
    before = timezone.now()
    client = load_client(project_a, url)
    lifetime = (client.cimd_expires_at - before).total_seconds()
    assert expected - 5 <= lifetime <= expected + 5


def test_it_advertises_cimd_per_project(client, project_a, project_b):
    project_b.cimd_enabled = False
    project_b.save()
    assert client.get("/p/alpha/.well-known/oauth-authorization-server").json()[
        "client_id_metadata_document_supported"] is True
    assert client.get("/p/bravo/.well-known/oauth-authorization-server").json()[
        "client_id_metadata_document_supported"] is False


# -- each refusal ---------------------------------------------------------------------------------------------

def test_it_ignores_cimd_urls_when_the_project_turned_cimd_off(docs, project_a):
    project_a.cimd_enabled = False
    project_a.save()
    url = docs.serve_client()
    assert_refused(project_a, url)
    assert docs.hits == {}


def test_it_refuses_a_non_https_client_id_without_fetching(docs, project_a):
    url = docs.serve_client().replace("https://", "http://")
    assert_refused(project_a, url)
    assert docs.hits == {}


def test_it_refuses_a_document_whose_client_id_is_not_the_url(docs, project_a):
    url = docs.url("/client.json")
    docs.serve_client(client_id=url + "?x=1")
    assert_refused(project_a, url)


def test_it_refuses_a_document_for_a_url_differing_only_in_case(docs, project_a):
    docs.serve_client(path="/Client.json")
    assert_refused(project_a, docs.url("/client.json"))


def test_it_refuses_an_oversized_document(docs, project_a):
    url = docs.serve_client(client_uri="https://claude.ai/" + "x" * 6000)
    assert_refused(project_a, url)


def test_it_accepts_a_document_just_under_the_size_cap(docs, project_a):
    url = docs.url("/client.json")
    base = {"client_id": url, "client_name": "Claude", "redirect_uris": ["https://claude.ai/cb"], "software_id": ""}
    padding = 5 * 1024 - len(json.dumps(base).encode())
    docs.serve("/client.json", {**base, "software_id": "s" * 0, "x_pad": "p" * (padding - len(', "x_pad": ""'))})
    assert len(docs.routes["/client.json"][2]) == 5 * 1024
    assert load_client(project_a, url) is not None


def test_it_refuses_to_follow_a_redirect(docs, project_a):
    target = docs.serve_client(path="/real.json")
    url = docs.serve("/client.json", b"", status=302, headers={"Location": target})
    assert_refused(project_a, url)
    assert "/real.json" not in docs.hits


def test_it_refuses_a_private_address_when_the_guard_is_on(docs, project_a, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    url = docs.serve_client()
    assert_refused(project_a, url)
    assert docs.hits == {}  # refused before connecting


def test_it_refuses_a_hostname_that_resolves_to_loopback_when_the_guard_is_on(docs, project_a, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    url = docs.serve_client().replace("127.0.0.1", "localhost")
    assert_refused(project_a, url)
    assert docs.hits == {}


def test_it_gives_up_on_a_server_that_does_not_answer_in_time(docs, project_a):
    url = docs.url("/slow.json")
    assert_refused(project_a, url)
    assert docs.hits["/slow.json"] == 1


def test_it_refuses_a_document_that_is_not_json(docs, project_a):
    url = docs.serve("/client.json", b"{not json", headers={"Content-Type": "application/json"})
    assert_refused(project_a, url)


def test_it_refuses_a_document_served_as_html(docs, project_a):
    url = docs.url("/client.json")
    docs.serve("/client.json", {"client_id": url, "client_name": "C", "redirect_uris": ["https://c.example/cb"]},
               headers={"Content-Type": "text/html"})
    assert_refused(project_a, url)


def test_it_refuses_a_json_array(docs, project_a):
    url = docs.serve("/client.json", [1, 2, 3])
    assert_refused(project_a, url)


def test_it_refuses_a_missing_document(docs, project_a):
    assert_refused(project_a, docs.url("/missing.json"))


@pytest.mark.parametrize("fields", [
    {"client_name": None},
    {"client_name": "   "},
    {"redirect_uris": None},
    {"redirect_uris": []},
    {"token_endpoint_auth_method": "client_secret_basic"},
    {"token_endpoint_auth_method": "client_secret_post"},
    {"token_endpoint_auth_method": "private_key_jwt"},
    {"client_secret": "shh"},
    {"client_secret_expires_at": 0},
    {"redirect_uris": ["http://evil.example/cb"]},
    {"redirect_uris": ["https://claude.ai/cb#frag"]},
    {"grant_types": ["client_credentials"], "response_types": []},
    {"grant_types": ["implicit"]},
])
def test_it_refuses_documents_breaking_the_drafts_rules(docs, project_a, fields):
    assert_refused(project_a, docs.serve_client(**fields))


def test_it_refuses_a_url_without_a_path(docs, project_a):
    assert_refused(project_a, f"https://127.0.0.1:{docs.port}")


@pytest.mark.parametrize("url", [
    "https://user:pw@127.0.0.1:{port}/client.json",  # no username or password (draft §3)
    "https://127.0.0.1:{port}/client.json#",          # no fragment, not even an empty one
    "https://127.0.0.1:{port}/client.json#x",
    "https://127.0.0.1:99999/client.json",            # not a port
    "https://127.0.0.1:{port}/a/./client.json",       # no dot segments
])
def test_it_refuses_a_client_id_url_breaking_the_drafts_rules_without_fetching(docs, project_a, url):
    assert_refused(project_a, url.format(port=docs.port))
    assert docs.hits == {}


def test_it_refuses_a_certificate_it_does_not_trust(docs, project_a, settings):
    settings.OUTBOUND_CA_BUNDLE = ""
    assert_refused(project_a, docs.serve_client())


def test_it_backs_off_after_a_failure_in_the_shared_cache(docs, project_a, project_b):
    url = docs.serve("/client.json", b"{not json")
    assert load_client(project_a, url) is None
    assert cache.get(backoff_key(url))  # the refusal's public reason, shared by every worker
    docs.serve_client()  # fixed now, but the URL is backed off for a while
    assert load_client(project_a, url) is None
    assert load_client(project_b, url) is None
    assert docs.hits["/client.json"] == 1
    cache.delete(backoff_key(url))  # the backoff expires
    assert load_client(project_a, url) is not None


def test_it_drops_scopes_outside_the_projects_catalog(docs, project_a):
    url = docs.serve_client(scope="mcp:tools admin")
    assert load_client(project_a, url).metadata["scope"] == "mcp:tools"


def test_it_refuses_a_disabled_cimd_client_without_fetching(docs, project_a):
    url = docs.serve_client()
    client = load_client(project_a, url)
    Application.objects.filter(pk=client.pk).update(disabled_at=timezone.now(),
                                                    cimd_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert load_client(project_a, url) is None
    assert docs.hits["/client.json"] == 1


def test_it_keeps_a_registered_client_whose_id_is_not_a_url(project_a, public_client_a):
    assert load_client(project_a, public_client_a.client_id).pk == public_client_a.pk


# -- the outbound wrapper's address guard ---------------------------------------------------------------

@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.8", "172.16.3.4", "192.168.1.1", "169.254.169.254",
                                "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
                                "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "224.0.0.1"])
def test_it_refuses_private_loopback_link_local_and_metadata_addresses(settings, ip):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    assert outbound.address_allowed(ip) is False


@pytest.mark.parametrize("ip", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_it_allows_public_addresses(settings, ip):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    assert outbound.address_allowed(ip) is True


def test_it_refuses_the_cloud_metadata_address_before_connecting(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(outbound.OutboundError, match="non-public"):
        outbound.get("https://169.254.169.254/latest/meta-data/")


@pytest.mark.parametrize("url", ["http://example.com/x", "ftp://example.com/x", "https://user:pw@example.com/x",
                                 "https:///x", "https://example.com:99999/x"])
def test_it_refuses_urls_it_must_not_fetch(url):
    with pytest.raises(outbound.OutboundError):
        outbound.get(url)


def test_the_wrapper_reads_at_most_the_cap(docs):
    url = docs.serve("/big.json", b"x" * 5121)
    with pytest.raises(outbound.OutboundError, match="larger"):
        outbound.get(url)
    assert outbound.get(docs.serve("/ok.json", b"x" * 5120)).body == b"x" * 5120


def test_the_wrapper_returns_a_redirect_without_following_it(docs):
    target = docs.serve("/target.json", b"{}")
    response = outbound.get(docs.serve("/r.json", b"", status=301, headers={"Location": target}))
    assert response.status == 301
    assert "/target.json" not in docs.hits


# -- the endpoints that take a client_id --------------------------------------------------------------------

def test_it_works_at_the_authorize_and_token_endpoints(docs, client, project_a, end_user_a):
    from oauth.models import Consent
    from tests.authz import LOOPBACK_REDIRECT, authorize_path, query_of, sign_in_as
    from tests.token_support import make_code, post_form, token_url

    url = docs.serve_client(redirect_uris=["http://127.0.0.1/callback"], scope="mcp:tools")
    sign_in_as(client, end_user_a)
    first = client.get(authorize_path(project_a, Application(client_id=url), scope="mcp:tools"))
    assert first.status_code in (200, 302)  # the consent page (or a redirect to it), not the 400 error page
    row = Application.objects.get(project=project_a, client_id=url)
    Consent.remember(end_user_a, row, ["mcp:tools"])
    second = client.get(authorize_path(project_a, row, scope="mcp:tools"))
    assert second.status_code == 302 and "code" in query_of(second["Location"])
    code, verifier = make_code(row, end_user_a, scope="mcp:tools", redirect_uri=LOOPBACK_REDIRECT)
    issued = post_form(client, token_url(project_a), {
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": LOOPBACK_REDIRECT, "client_id": url})
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "Bearer"
    assert docs.hits["/client.json"] == 1


def fetches(outcome: str) -> float:
    return REGISTRY.get_sample_value("mcpauth_cimd_fetches_total", {"outcome": outcome}) or 0.0


def test_each_fetch_is_counted_in_the_metrics_by_outcome(docs, project_a, project_b):
    ok, http_error = fetches("ok"), fetches("http_error")
    url = docs.serve_client()
    missing = docs.serve("/missing.json", {"error": "gone"}, status=404)

    load_client(project_a, url)
    load_client(project_b, url)  # from the shared cache: no fetch
    assert load_client(project_a, missing) is None

    assert (fetches("ok") - ok, fetches("http_error") - http_error) == (1, 1)
