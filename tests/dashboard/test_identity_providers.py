"""The dashboard's Identity providers page, the end users' linked identities, and the management API
for both: the same checks (identity.manage), audited, the secret write-only, scoped to one project."""

import json

import pytest

from dashboard.models import OperatorToken
from identity.models import IdentityProvider, UpstreamIdentity
from projects.models import AuditEvent, ProjectMember, User
from tests.identity.conftest import make_provider, standin  # noqa: F401 - the stand-in upstream fixture

pytestmark = pytest.mark.django_db

API = "/api/v1/projects"


@pytest.fixture
def alice_token(alice):
    return OperatorToken.issue(alice, "ci")[1]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def provider(project, name="GitHub", **fields) -> IdentityProvider:
    row = IdentityProvider(project=project, kind=fields.pop("kind", "github"), name=name, client_id="cid", **fields)
    row.client_secret = "the-secret"
    row.save()
    return row


def linked(project, row) -> UpstreamIdentity:
    user = User.objects.create_end_user(project, "linked@example.com")
    return UpstreamIdentity.objects.create(provider=row, subject="12345", user=user, email="linked@example.com")


# -- the management API ------------------------------------------------------------------------------

def test_the_api_adds_lists_changes_and_deletes_a_provider_without_ever_showing_the_secret(client, project_a,
                                                                                           alice_token):
    made = client.post(f"{API}/alpha/identity-providers", {"kind": "google", "name": "Google", "client_id": "g-id",
                                                           "client_secret": "g-secret", "domains": ["acme.example"]},
                       content_type="application/json", **bearer(alice_token))
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["callback_url"] == f"{project_a.issuer}/oauth/upstream/callback" and "client_secret" not in body
    row = IdentityProvider.objects.get(pk=body["id"])
    assert row.client_secret == "g-secret"

    listed = client.get(f"{API}/alpha/identity-providers", **bearer(alice_token))
    assert [p["name"] for p in listed.json()] == ["Google"] and "g-secret" not in listed.content.decode()

    changed = client.patch(f"{API}/alpha/identity-providers/{row.pk}", {"enabled": False, "name": "Google Workspace"},
                           content_type="application/json", **bearer(alice_token))
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    row.refresh_from_db()
    assert (row.name, row.enabled, row.client_secret, row.domains) == ("Google Workspace", False, "g-secret",
                                                                       ["acme.example"])

    assert client.delete(f"{API}/alpha/identity-providers/{row.pk}", **bearer(alice_token)).status_code == 204
    assert not IdentityProvider.objects.exists()
    kinds = list(AuditEvent.objects.filter(project=project_a, kind__startswith="identity.").values_list("kind", flat=True))
    assert sorted(kinds) == ["identity.provider_added", "identity.provider_changed", "identity.provider_removed"]
    assert "g-secret" not in json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_the_api_says_what_is_wrong(client, project_a, alice_token):
    refused = client.post(f"{API}/alpha/identity-providers", {"kind": "oidc", "name": "SSO", "client_id": "c",
                                                              "client_secret": "s", "issuer": "not a url"},
                          content_type="application/json", **bearer(alice_token))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert "issuer" in refused.json()["error_description"] or "issuer" in json.dumps(refused.json())
    missing = client.post(f"{API}/alpha/identity-providers", {"kind": "github", "name": "GitHub", "client_id": "c"},
                          content_type="application/json", **bearer(alice_token))
    assert missing.status_code == 400 and not IdentityProvider.objects.exists()


def test_the_api_refuses_another_projects_providers_and_identities(client, project_a, project_b, alice_token):
    theirs = provider(project_b)
    identity = linked(project_b, theirs)
    for method, path in [("get", f"{API}/bravo/identity-providers"), ("get", f"{API}/bravo/identity-providers/{theirs.pk}"),
                         ("get", f"{API}/alpha/identity-providers/{theirs.pk}"),
                         ("delete", f"{API}/alpha/identity-providers/{theirs.pk}"),
                         ("patch", f"{API}/alpha/identity-providers/{theirs.pk}"),
                         ("get", f"{API}/alpha/end-users/{identity.user.pk}/identities"),
                         ("delete", f"{API}/alpha/end-users/{identity.user.pk}/identities/{identity.pk}")]:
        response = getattr(client, method)(path, content_type="application/json", **bearer(alice_token))
        assert response.status_code == 404, (method, path)
    assert IdentityProvider.objects.filter(pk=theirs.pk, enabled=True).exists() and UpstreamIdentity.objects.exists()


def test_a_viewer_cannot_change_providers(client, project_a, bob, alice_token):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    token = OperatorToken.issue(bob, "ci")[1]
    row = provider(project_a)
    assert client.get(f"{API}/alpha/identity-providers", **bearer(token)).status_code == 200
    assert client.delete(f"{API}/alpha/identity-providers/{row.pk}", **bearer(token)).status_code == 403
    assert IdentityProvider.objects.filter(pk=row.pk).exists()


def test_the_api_lists_and_unlinks_an_end_users_identities(client, project_a, alice_token):
    identity = linked(project_a, provider(project_a))
    path = f"{API}/alpha/end-users/{identity.user.pk}/identities"
    listed = client.get(path, **bearer(alice_token)).json()
    assert [(i["provider_name"], i["subject"]) for i in listed] == [("GitHub", "12345")]
    assert client.delete(f"{path}/{identity.pk}", **bearer(alice_token)).status_code == 204
    assert not UpstreamIdentity.objects.exists() and User.objects.filter(pk=identity.user.pk).exists()
    assert AuditEvent.objects.get(kind="identity.unlinked").detail["upstream_subject"] == "12345"


def test_setproject_takes_email_signin_enabled(client, project_a, alice_token):
    response = client.patch(f"{API}/alpha", {"email_signin_enabled": False}, content_type="application/json",
                            **bearer(alice_token))
    assert response.status_code == 200, response.content
    project_a.refresh_from_db()
    assert project_a.email_signin_enabled is False


# -- the dashboard ---------------------------------------------------------------------------------------

def test_the_page_shows_the_callback_url_and_adds_a_provider(client, project_a, alice):
    client.force_login(alice)
    page = client.get("/projects/alpha/identity-providers").content.decode()
    assert f"{project_a.issuer}/oauth/upstream/callback" in page
    response = client.post("/projects/alpha/identity-providers", {
        "kind": "oidc", "name": "Acme SSO", "client_id": "acme", "client_secret": "acme-secret",
        "issuer": "https://sso.acme.example", "scopes": "groups", "domains": "acme.example\n",
        "create_accounts": "on", "enabled": "on"})
    assert response.status_code == 302
    row = IdentityProvider.objects.get(project=project_a)
    assert (row.name, row.scopes, row.domains, row.client_secret) == ("Acme SSO", ["groups"], ["acme.example"], "acme-secret")
    assert "acme-secret" not in client.get("/projects/alpha/identity-providers").content.decode()


def test_the_page_says_what_is_wrong(client, project_a, alice):
    client.force_login(alice)
    response = client.post("/projects/alpha/identity-providers", {"kind": "oidc", "name": "SSO", "client_id": "c",
                                                                  "client_secret": "s", "issuer": "http://sso.example"})
    assert response.status_code == 400 and "needs its issuer" in response.content.decode()


def test_edit_keeps_the_secret_when_left_empty_turn_off_and_delete(client, project_a, alice):
    client.force_login(alice)
    row = provider(project_a)
    edit = client.get(f"/projects/alpha/identity-providers/{row.pk}").content.decode()
    assert "the-secret" not in edit
    response = client.post(f"/projects/alpha/identity-providers/{row.pk}", {
        "name": "GitHub (company)", "client_id": "cid2", "client_secret": "", "issuer": "", "scopes": "",
        "domains": "", "create_accounts": "on", "enabled": "on"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.name, row.client_id, row.client_secret, row.kind) == ("GitHub (company)", "cid2", "the-secret", "github")
    client.post(f"/projects/alpha/identity-providers/{row.pk}/toggle")
    row.refresh_from_db()
    assert row.enabled is False
    client.post(f"/projects/alpha/identity-providers/{row.pk}/delete")
    assert not IdentityProvider.objects.exists()


def test_another_operators_providers_are_not_found(client, project_a, project_b, alice):
    client.force_login(alice)
    theirs = provider(project_b)
    assert client.get("/projects/bravo/identity-providers").status_code == 404
    for path in (f"/{theirs.pk}", f"/{theirs.pk}/toggle", f"/{theirs.pk}/delete", f"/{theirs.pk}/test"):
        assert client.post(f"/projects/alpha/identity-providers{path}").status_code == 404, path
    theirs.refresh_from_db()
    assert theirs.enabled


def test_the_end_users_page_shows_linked_identities_and_unlinks(client, project_a, project_b, alice):
    client.force_login(alice)
    identity = linked(project_a, provider(project_a))
    page = client.get("/projects/alpha/users").content.decode()
    assert "GitHub: linked@example.com" in page
    theirs = linked(project_b, provider(project_b))
    refused = client.post(f"/projects/alpha/users/{theirs.user.pk}/identities/{theirs.pk}/unlink")
    assert refused.status_code == 404 and UpstreamIdentity.objects.filter(pk=theirs.pk).exists()
    client.post(f"/projects/alpha/users/{identity.user.pk}/identities/{identity.pk}/unlink")
    assert not UpstreamIdentity.objects.filter(pk=identity.pk).exists()


def test_test_sign_in_shows_what_came_back_and_makes_nobody(client, project_a, alice, standin):  # noqa: F811
    client.force_login(alice)
    row = make_provider(project_a, standin, enabled=False)
    start = client.post(f"/projects/alpha/identity-providers/{row.pk}/test")
    assert start.status_code == 302 and start["Location"].startswith(standin.base)
    answer = standin.approve(start["Location"], subject="tester-1", email="ops@acme.example")
    back = client.get("/p/alpha/oauth/upstream/callback", answer)
    assert back.status_code == 302 and f"/projects/alpha/identity-providers/{row.pk}/tested?result=" in back["Location"]
    page = client.get(back["Location"].split("127.0.0.1:8000", 1)[-1]).content.decode()
    assert "It works" in page and "tester-1" in page and "ops@acme.example" in page
    assert not User.objects.filter(project=project_a).exists() and not UpstreamIdentity.objects.exists()
