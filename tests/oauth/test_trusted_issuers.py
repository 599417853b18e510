"""Trusting an enterprise identity provider (ID-JAG): the `trustissuer` command, the dashboard's
Enterprise page and the management API, each through `oauth.trusted_issuers`, each audited, each
scoped to one project. A `jwks_uri` is fetched through the SSRF-safe wrapper from a real local TLS
server; a private address is refused without naming it.
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import OperatorToken
from enterprise.models import TrustedIssuer
from projects.models import AuditEvent, ProjectMember
from tests.oauth.clients.test_cimd import DocumentServer
from tests.oauth.grants.test_jwt_bearer import IDP, new_key, public_jwks

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def run(*args) -> dict:
    out = io.StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def docs(tmp_path, settings):
    server = DocumentServer(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the server is on 127.0.0.1
    yield server
    server.stop()


@pytest.fixture
def jwks_file(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(new_key("f1"))))
    return str(path)


# -- the command line ---------------------------------------------------------------------------------

def test_trustissuer_stores_an_inline_jwks_and_prints_the_id(project_a, jwks_file):
    made = run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-file", jwks_file,
               "--client", "agent-1", "--scope", "mcp:tools", "--provision")
    row = TrustedIssuer.objects.get(pk=made["id"])
    assert (row.project, row.issuer, row.jwks_uri) == (project_a, IDP, "")
    assert row.jwks["keys"][0]["kid"] == "f1" and "d" not in row.jwks["keys"][0]
    assert (row.client_ids, row.scopes, row.provision, row.refresh_tokens) == (["agent-1"], ["mcp:tools"], True, False)
    assert row.algorithms == ["RS256", "ES256"]
    assert AuditEvent.objects.get(kind="enterprise.issuer_trusted").detail["issuer"] == IDP


def test_trustissuer_fetches_the_jwks_uri(project_a, docs):
    uri = docs.serve("/jwks", public_jwks(new_key("u1")))
    made = run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-uri", uri)
    assert TrustedIssuer.objects.get(pk=made["id"]).jwks_uri == uri


def test_trustissuer_refuses_a_jwks_uri_at_a_private_address_without_naming_it(project_a, docs, settings):
    uri = docs.serve("/jwks", public_jwks(new_key("u1")))
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(CommandError) as refused:
        run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-uri", uri)
    assert "the address is not allowed" in str(refused.value) and "127.0.0.1" not in str(refused.value)
    assert not TrustedIssuer.objects.exists()


@pytest.mark.parametrize("args, says", [
    (["--issuer", "http://idp.example", "--jwks-file", "{file}"], "issuer must be an https URL"),
    (["--issuer", IDP, "--jwks-uri", "http://idp.example/jwks"], "jwks_uri must be an https URL"),
    (["--issuer", IDP, "--jwks-file", "{file}", "--scope", "admin"], "not in the project's scope catalog"),
    (["--issuer", IDP, "--jwks-file", "{file}", "--alg", "HS256"], "Algorithms must be asymmetric"),
    (["--issuer", IDP, "--jwks-file", "{private}"], "public keys only"),
])
def test_trustissuer_refuses_what_it_cannot_trust(project_a, jwks_file, tmp_path, args, says):
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [new_key("p1").export_private(as_dict=True)]}))
    with pytest.raises(CommandError) as refused:
        run("trustissuer", "--project", "alpha", *[a.format(file=jwks_file, private=private) for a in args])
    assert says in str(refused.value)
    assert not TrustedIssuer.objects.exists()


def test_trustissuer_refuses_the_same_issuer_twice(project_a, jwks_file):
    run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-file", jwks_file)
    with pytest.raises(CommandError, match="already trusts"):
        run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-file", jwks_file)


def test_a_client_may_register_the_grant_once_the_project_trusts_an_issuer(project_a, jwks_file):
    with pytest.raises(CommandError, match="none of the requested grant types can be used"):
        run("createclient", "--project", "alpha", "--name", "Agent", "--confidential", "--grant", GRANT)
    run("trustissuer", "--project", "alpha", "--issuer", IDP, "--jwks-file", jwks_file)
    made = run("createclient", "--project", "alpha", "--name", "Agent", "--confidential", "--grant", GRANT)
    assert made["client_secret"]


# -- the management API -----------------------------------------------------------------------------------

def test_the_api_trusts_lists_and_removes_an_issuer(client, project_a, alice):
    token = OperatorToken.issue(alice, "ci")[1]
    body = {"issuer": IDP, "jwks": public_jwks(new_key("a1")), "client_ids": ["agent-1"], "scopes": ["mcp:tools"]}
    created = client.post("/api/v1/projects/alpha/trusted-issuers", body, content_type="application/json",
                          **bearer(token))
    assert created.status_code == 201, created.content
    assert created.json()["issuer"] == IDP and created.json()["algorithms"] == ["RS256", "ES256"]
    listed = client.get("/api/v1/projects/alpha/trusted-issuers", **bearer(token)).json()
    assert [i["id"] for i in listed] == [created.json()["id"]]
    removed = client.delete(f"/api/v1/projects/alpha/trusted-issuers/{created.json()['id']}", **bearer(token))
    assert removed.status_code == 204 and not TrustedIssuer.objects.exists()
    assert AuditEvent.objects.get(kind="enterprise.issuer_removed").actor == "alice@example.com"


def test_the_api_refuses_an_invalid_issuer_naming_the_field(client, project_a, alice):
    token = OperatorToken.issue(alice, "ci")[1]
    response = client.post("/api/v1/projects/alpha/trusted-issuers", {"issuer": IDP}, content_type="application/json",
                           **bearer(token))
    assert response.status_code == 400 and "jwks_uri" in response.json()["fields"]
    assert not TrustedIssuer.objects.exists()


def test_the_api_hides_another_operators_issuers(client, project_a, project_b, alice, bob, jwks_file):
    run("trustissuer", "--project", "bravo", "--issuer", IDP, "--jwks-file", jwks_file)
    theirs = TrustedIssuer.objects.get(project=project_b)
    token = OperatorToken.issue(alice, "ci")[1]
    assert client.get("/api/v1/projects/bravo/trusted-issuers", **bearer(token)).status_code == 404
    assert client.delete(f"/api/v1/projects/alpha/trusted-issuers/{theirs.pk}", **bearer(token)).status_code == 404
    assert TrustedIssuer.objects.filter(pk=theirs.pk).exists()


def test_a_viewer_lists_but_cannot_trust(client, project_a, bob):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    token = OperatorToken.issue(bob, "ro")[1]
    assert client.get("/api/v1/projects/alpha/trusted-issuers", **bearer(token)).status_code == 200
    response = client.post("/api/v1/projects/alpha/trusted-issuers", {"issuer": IDP, "jwks": public_jwks(new_key("v"))},
                           content_type="application/json", **bearer(token))
    assert response.status_code == 403 and not TrustedIssuer.objects.exists()


# -- the dashboard page -------------------------------------------------------------------------------------

def test_the_enterprise_page_trusts_and_removes_an_issuer(client, project_a, alice):
    client.force_login(alice)
    page = client.get("/projects/alpha/enterprise")
    assert page.status_code == 200 and b"the jwt-bearer grant is not offered" in page.content
    response = client.post("/projects/alpha/enterprise", {
        "issuer": IDP, "jwks": json.dumps(public_jwks(new_key("d1"))), "client_ids": "agent-1\nagent-2",
        "scopes": ["mcp:tools"], "algorithms": ["RS256"], "provision": "on"})
    assert response.status_code == 302, response.content
    row = TrustedIssuer.objects.get(project=project_a)
    assert (row.client_ids, row.scopes, row.algorithms, row.provision) == (["agent-1", "agent-2"], ["mcp:tools"],
                                                                          ["RS256"], True)
    assert IDP.encode() in client.get("/projects/alpha/enterprise").content
    assert client.post(f"/projects/alpha/enterprise/{row.pk}/remove").status_code == 302
    assert not TrustedIssuer.objects.exists()


def test_the_enterprise_page_says_what_is_wrong(client, project_a, alice):
    client.force_login(alice)
    response = client.post("/projects/alpha/enterprise", {"issuer": IDP, "algorithms": ["RS256"]})
    assert response.status_code == 400 and b"Give exactly one of jwks_uri and jwks" in response.content
    assert not TrustedIssuer.objects.exists()


def test_the_enterprise_page_of_another_operators_project_is_not_found(client, project_a, project_b, alice,
                                                                       jwks_file):
    run("trustissuer", "--project", "bravo", "--issuer", IDP, "--jwks-file", jwks_file)
    theirs = TrustedIssuer.objects.get(project=project_b)
    client.force_login(alice)
    assert client.get("/projects/bravo/enterprise").status_code == 404
    assert client.post(f"/projects/alpha/enterprise/{theirs.pk}/remove").status_code == 404
    assert TrustedIssuer.objects.filter(pk=theirs.pk).exists()
