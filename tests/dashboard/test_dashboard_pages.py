"""Issue 6: the operator dashboard, page by page, through Django's test client on real PostgreSQL."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.hashers import check_password
from django.utils import timezone

from activity import record
from oauth.models import AccessToken, Application, Consent, RefreshToken
from projects.models import AuditEvent, Project, ProjectMember, ProjectSecret, SigningKey, User
from tests.conftest import PASSWORD


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def _tokens(client, user, n=1):
    """`n` live access tokens, each with a refresh token, for `client` on behalf of `user`."""
    made = []
    for i in range(n):
        access = AccessToken.objects.create(user=user, application=client, token=f"mcpat_test{client.pk}_{user.pk}_{i}",
                                            expires=timezone.now() + timedelta(hours=1), scope="mcp:tools")
        RefreshToken.objects.create(user=user, application=client, token=f"mcprt_test{client.pk}_{user.pk}_{i}",
                                    access_token=access)
        made.append(access)
    return made


# --- Operator accounts ------------------------------------------------------------------------

def test_it_signs_up_an_operator_and_signs_them_in(client, db):
    response = client.post("/signup", {"email": "Dana@Example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/projects/new"
    dana = User.objects.get(username="dana@example.com")
    assert dana.is_operator and dana.check_password(PASSWORD)
    assert client.get("/").status_code == 200


def test_it_refuses_a_second_account_with_the_same_email(client, alice):
    response = client.post("/signup", {"email": "alice@example.com", "password": "another long password"})
    assert response.status_code == 400
    assert User.objects.filter(username="alice@example.com").count() == 1


def test_it_refuses_a_weak_password_at_sign_up(client, db):
    response = client.post("/signup", {"email": "dana@example.com", "password": "password"})
    assert response.status_code == 400
    assert not User.objects.filter(username="dana@example.com").exists()


def test_it_changes_the_password_and_keeps_the_session(as_alice, alice):
    response = as_alice.post("/account", {"action": "password", "old_password": PASSWORD,
                                          "new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a brand new passphrase")
    assert as_alice.get("/").status_code == 200


def test_it_refuses_a_password_change_with_the_wrong_old_password(as_alice, alice):
    response = as_alice.post("/account", {"action": "password", "old_password": "nope",
                                          "new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"})
    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_it_signs_out_only_by_post(as_alice):
    assert as_alice.get("/logout").status_code == 405
    assert as_alice.post("/logout").status_code == 302
    assert as_alice.get("/").status_code == 302


def test_it_sends_a_signed_out_visitor_to_sign_in_from_every_project_page(client, project_a):
    for path in ("/projects/alpha", "/projects/alpha/clients", "/projects/alpha/settings", "/account"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login?next=")


# --- Projects -----------------------------------------------------------------------------------

def test_it_creates_a_project_and_shows_its_registration_secret_once(as_alice, alice):
    response = as_alice.post("/projects/new", {"name": "Gamma", "slug": "gamma", "resource": "https://mcp.gamma.example/mcp"})
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    project = Project.objects.get(slug="gamma")
    assert project.role_of(alice) == "owner" and project.resources == ["https://mcp.gamma.example/mcp"]
    secret = html.split('value="mcps_', 1)[1].split('"', 1)[0]
    assert ProjectSecret.authenticate(project, "mcps_" + secret, "register") is not None
    for path in ("/projects/gamma", "/projects/gamma/secrets", "/"):
        assert secret not in as_alice.get(path).content.decode()


def test_it_refuses_a_taken_or_malformed_slug(as_alice, project_b):
    assert as_alice.post("/projects/new", {"name": "X", "slug": "bravo"}).status_code == 400
    assert as_alice.post("/projects/new", {"name": "X", "slug": "Not A Slug"}).status_code == 400
    assert as_alice.post("/projects/new", {"name": "X", "slug": "new"}).status_code == 400
    assert Project.objects.count() == 1


def test_it_refuses_a_resource_that_is_not_https(as_alice, alice):
    response = as_alice.post("/projects/new", {"name": "X", "slug": "x", "resource": "http://mcp.example.com/mcp"})
    assert response.status_code == 400
    assert not Project.objects.filter(slug="x").exists()


def test_it_shows_the_protected_resource_metadata_and_header_to_serve(as_alice, project_a):
    html = as_alice.get("/projects/alpha").content.decode()
    expected = json.dumps({
        "resource": "https://mcp.alpha.example/mcp",
        "authorization_servers": ["http://127.0.0.1:8000/p/alpha"],
        "scopes_supported": ["mcp:tools", "mcp:resources", "mcp:prompts", "offline_access"],
        "bearer_methods_supported": ["header"],
    }, indent=2).replace('"', "&quot;")
    assert expected in html
    assert ("WWW-Authenticate: Bearer resource_metadata=&quot;"
            "https://mcp.alpha.example/.well-known/oauth-protected-resource/mcp&quot;") in html
    assert '<code id="issuer">http://127.0.0.1:8000/p/alpha</code>' in html


def test_it_charts_what_was_counted_not_the_rows_that_survive(as_alice, project_a, public_client_a, end_user_a,
                                                               public_client_b, end_user_b):
    # Issuance is counted as it happens (tests/activity has the end-to-end numbers); token rows and
    # audit events alone are not activity.
    for _ in range(3):
        record.record(project_a, record.ISSUED, "authorization_code", client_id=public_client_a.client_id)
    record.record(project_b := public_client_b.project, record.ISSUED, "authorization_code")  # another project's
    record.record(project_a, record.REFUSED, "invalid_grant", endpoint="oauth:token")
    _tokens(public_client_a, end_user_a, 5)
    AuditEvent.record(project_a, "token.exchanged", client_id="c1")
    response = as_alice.get("/projects/alpha")
    charts = {c.key: c.total for c in response.context["activity"].charts}
    assert charts == {"registrations": 0, "authorizations": 0, "tokens": 3, "failures": 1}
    this_hour = response.context["activity"].charts[0].bars[-1]
    assert (this_hour.count, this_hour.height) == (3, 100)
    assert project_b.slug == "bravo"


# --- Tenancy and roles --------------------------------------------------------------------------

PAGES = ["", "/clients", "/clients/new", "/users", "/secrets", "/settings", "/members", "/audit"]


def test_it_answers_404_for_every_page_of_another_operators_project(as_alice, project_a, project_b):
    for page in PAGES:
        assert as_alice.get(f"/projects/bravo{page}").status_code == 404, page
    client = Application.objects.filter(project=project_b).first() or Application.objects.create(
        project=project_b, name="B", client_type="public", authorization_grant_type="authorization-code")
    assert as_alice.get(f"/projects/bravo/clients/{client.pk}").status_code == 404
    assert as_alice.post(f"/projects/bravo/clients/{client.pk}/delete").status_code == 404
    assert Application.objects.filter(pk=client.pk).exists()


def test_it_answers_404_for_another_projects_client_under_my_project(as_alice, project_a, public_client_b):
    assert as_alice.get(f"/projects/alpha/clients/{public_client_b.pk}").status_code == 404
    assert as_alice.post(f"/projects/alpha/clients/{public_client_b.pk}/delete").status_code == 404
    assert as_alice.post(f"/projects/alpha/clients/{public_client_b.pk}/revoke-tokens").status_code == 404
    assert Application.objects.filter(pk=public_client_b.pk).exists()


@pytest.fixture
def as_viewer(client, bob, project_a, public_client_a, end_user_a):
    ProjectMember.objects.create(project=project_a, user=bob, role="viewer")
    client.force_login(bob)
    return client


def test_it_lets_a_viewer_read_every_page(as_viewer, public_client_a):
    for page in ["", "/clients", "/users", "/secrets", "/settings", "/members", "/audit",
                 f"/clients/{public_client_a.pk}"]:
        assert as_viewer.get(f"/projects/alpha{page}").status_code == 200, page
    assert as_viewer.get("/projects/alpha/clients/new").status_code == 403


def test_it_refuses_every_change_by_a_viewer(as_viewer, project_a, public_client_a, end_user_a, alice):
    secret = project_a.secrets.get()
    member = project_a.memberships.get(user=alice)
    before = project_a.updated_at
    attempts = [
        ("/clients/new", {"name": "X", "client_type": "public", "grant_types": ["authorization_code"],
                          "redirect_uris": "https://x.example/cb"}),
        (f"/clients/{public_client_a.pk}/revoke-tokens", {}),
        (f"/clients/{public_client_a.pk}/disable", {"disabled": "1"}),
        (f"/clients/{public_client_a.pk}/delete", {}),
        (f"/users/{end_user_a.pk}/revoke", {}),
        ("/secrets", {"name": "X", "permissions": ["introspect"]}),
        (f"/secrets/{secret.pk}/revoke", {}),
        ("/settings", {"scopes_text": "x", "login_mode": "hosted", "token_format": "jwt",
                       "access_token_ttl": 600, "refresh_token_ttl": 3600, "accent_color": "#000000"}),
        ("/settings/rotate-key", {}),
        ("/members", {"email": "bob@example.com", "role": "owner"}),
        (f"/members/{member.pk}", {"role": "viewer"}),
    ]
    for path, data in attempts:
        assert as_viewer.post(f"/projects/alpha{path}", data).status_code == 403, path
    project_a.refresh_from_db()
    assert project_a.updated_at == before and project_a.token_format == "opaque"
    assert Application.objects.filter(project=project_a).count() == 1
    assert secret.__class__.objects.get(pk=secret.pk).revoked_at is None
    assert project_a.secrets.count() == 1 and SigningKey.objects.filter(project=project_a).count() == 1
    assert project_a.role_of(alice) == "owner"


def test_it_shows_a_viewer_no_controls_that_change_anything(as_viewer, public_client_a):
    html = as_viewer.get(f"/projects/alpha/clients/{public_client_a.pk}").content.decode()
    assert "Delete client" not in html and "Revoke all tokens" not in html
    assert "Create secret" not in as_viewer.get("/projects/alpha/secrets").content.decode()
    assert "Save settings" not in as_viewer.get("/projects/alpha/settings").content.decode()


# --- Clients ------------------------------------------------------------------------------------

def test_it_lists_clients_with_search_filters_and_live_token_counts(as_alice, project_a, public_client_a,
                                                                    confidential_client_a, end_user_a):
    _tokens(public_client_a, end_user_a, 2)
    response = as_alice.get("/projects/alpha/clients")
    rows = {g.first.pk: g for g in response.context["page"]}
    assert rows[public_client_a.pk].live_tokens == 2 and rows[confidential_client_a.pk].live_tokens == 0
    found = as_alice.get("/projects/alpha/clients", {"q": confidential_client_a.name[:8]}).context["page"]
    assert [g.first.pk for g in found] == [confidential_client_a.pk]
    found = as_alice.get("/projects/alpha/clients", {"path": "secret"}).context["page"]
    assert [g.first.pk for g in found] == [confidential_client_a.pk]
    found = as_alice.get("/projects/alpha/clients", {"live": "yes"}).context["page"]
    assert [g.first.pk for g in found] == [public_client_a.pk]
    Application.objects.filter(pk=confidential_client_a.pk).update(last_used_at=timezone.now() - timedelta(days=3))
    found = as_alice.get("/projects/alpha/clients", {"used": "week"}).context["page"]
    assert [g.first.pk for g in found] == [confidential_client_a.pk]
    assert as_alice.get("/projects/alpha/clients", {"used": "day"}).context["total"] == 0
    found = as_alice.get("/projects/alpha/clients", {"used": "never"}).context["page"]
    assert [g.first.pk for g in found] == [public_client_a.pk]


def test_it_groups_repeated_identical_registrations(as_alice, project_a):
    for _ in range(3):
        Application.objects.create(project=project_a, name="Cursor", client_type="public",
                                   authorization_grant_type="authorization-code", registration_path="open",
                                   fingerprint="f" * 64, metadata={"software_id": "cursor"})
    groups = list(as_alice.get("/projects/alpha/clients").context["page"])
    assert len(groups) == 1 and groups[0].count == 3
    assert len(as_alice.get("/projects/alpha/clients", {"fingerprint": "f" * 64}).context["page"]) == 3
    assert len(as_alice.get("/projects/alpha/clients", {"software": "cursor"}).context["page"]) == 1


def test_it_shows_a_clients_metadata_redirect_uris_and_grants(as_alice, confidential_client_a):
    html = as_alice.get(f"/projects/alpha/clients/{confidential_client_a.pk}").content.decode()
    assert "https://backend.example/callback" in html and "client_credentials" in html
    assert confidential_client_a.plain_secret not in html


def test_it_revokes_all_tokens_of_a_client(as_alice, project_a, public_client_a, confidential_client_a, end_user_a):
    _tokens(public_client_a, end_user_a, 2)
    _tokens(confidential_client_a, end_user_a, 1)
    response = as_alice.post(f"/projects/alpha/clients/{public_client_a.pk}/revoke-tokens")
    assert response.status_code == 302
    assert not AccessToken.objects.filter(application=public_client_a).exists()
    assert not RefreshToken.objects.filter(application=public_client_a, revoked__isnull=True).exists()
    assert AccessToken.objects.filter(application=confidential_client_a).count() == 1
    event = AuditEvent.objects.get(project=project_a, kind="token.revoked")
    assert event.client_id == public_client_a.client_id and event.actor == "alice@example.com"


def test_it_disables_and_re_enables_a_client(as_alice, project_a, public_client_a, end_user_a):
    _tokens(public_client_a, end_user_a)
    as_alice.post(f"/projects/alpha/clients/{public_client_a.pk}/disable", {"disabled": "1"})
    public_client_a.refresh_from_db()
    assert public_client_a.disabled_at is not None
    assert not AccessToken.objects.filter(application=public_client_a).exists()
    as_alice.post(f"/projects/alpha/clients/{public_client_a.pk}/disable", {"disabled": "0"})
    public_client_a.refresh_from_db()
    assert public_client_a.disabled_at is None
    assert {"client.disabled", "client.enabled"} <= set(project_a.audit_events.values_list("kind", flat=True))


def test_it_deletes_a_client_and_its_tokens(as_alice, project_a, public_client_a, end_user_a):
    _tokens(public_client_a, end_user_a)
    response = as_alice.post(f"/projects/alpha/clients/{public_client_a.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/projects/alpha/clients"
    assert not Application.objects.filter(pk=public_client_a.pk).exists()
    assert not AccessToken.objects.filter(user=end_user_a).exists()
    assert project_a.audit_events.filter(kind="client.deleted", client_id=public_client_a.client_id).exists()


def test_it_creates_a_confidential_client_and_shows_its_secret_once_stored_hashed(as_alice, project_a):
    response = as_alice.post("/projects/alpha/clients/new", {
        "name": "Backend", "client_type": "confidential", "grant_types": ["authorization_code", "client_credentials"],
        "redirect_uris": "https://backend.example/cb\nhttp://127.0.0.1/cb",
    })
    assert response.status_code == 200
    client = Application.objects.get(project=project_a, name="Backend")
    secret = response.content.decode().split('value="mcpcs_', 1)[1].split('"', 1)[0]
    assert client.client_secret.startswith("mcpauth_hmac$")
    assert check_password("mcpcs_" + secret, client.client_secret)
    assert client.registration_path == "dashboard" and client.redirect_uris.split() == [
        "https://backend.example/cb", "http://127.0.0.1/cb"]
    assert client.metadata["grant_types"] == ["authorization_code", "client_credentials"]
    assert secret not in as_alice.get(f"/projects/alpha/clients/{client.pk}").content.decode()


def test_it_refuses_client_credentials_for_a_public_client_and_bad_redirects(as_alice, project_a):
    response = as_alice.post("/projects/alpha/clients/new", {
        "name": "Bad", "client_type": "public", "grant_types": ["client_credentials"]})
    assert response.status_code == 400
    response = as_alice.post("/projects/alpha/clients/new", {
        "name": "Bad", "client_type": "public", "grant_types": ["authorization_code"],
        "redirect_uris": "http://evil.example/cb"})
    assert response.status_code == 400
    assert not Application.objects.filter(project=project_a, name="Bad").exists()


# --- End users ----------------------------------------------------------------------------------

def test_it_revokes_a_persons_grants_tokens_and_remembered_consent(as_alice, project_a, public_client_a,
                                                                   end_user_a, public_client_b, end_user_b):
    _tokens(public_client_a, end_user_a, 2)
    _tokens(public_client_b, end_user_b, 1)
    Consent.objects.create(user=end_user_a, client=public_client_a, scopes=["mcp:tools"])
    listing = as_alice.get("/projects/alpha/users")
    assert [p.pk for p in listing.context["page"]] == [end_user_a.pk]
    assert as_alice.post(f"/projects/alpha/users/{end_user_a.pk}/revoke").status_code == 302
    assert not AccessToken.objects.filter(user=end_user_a).exists()
    assert not Consent.objects.filter(user=end_user_a).exists()
    assert AccessToken.objects.filter(user=end_user_b).count() == 1
    assert as_alice.post(f"/projects/alpha/users/{end_user_b.pk}/revoke").status_code == 404


# --- Secrets ------------------------------------------------------------------------------------

def test_it_creates_a_secret_with_permissions_shown_once(as_alice, project_a):
    response = as_alice.post("/projects/alpha/secrets", {"name": "Introspection", "permissions": ["introspect"]})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    value = "mcps_" + response.content.decode().split('value="mcps_', 1)[1].split('"', 1)[0]
    row = ProjectSecret.authenticate(project_a, value, "introspect")
    assert row is not None and row.permissions == ["introspect"]
    assert ProjectSecret.authenticate(project_a, value, "register") is None
    assert value not in as_alice.get("/projects/alpha/secrets").content.decode()
    assert project_a.audit_events.filter(kind="secret.created").count() == 2


def test_it_refuses_a_secret_without_permissions(as_alice, project_a):
    assert as_alice.post("/projects/alpha/secrets", {"name": "None"}).status_code == 400
    assert project_a.secrets.count() == 1


def test_it_revokes_a_secret(as_alice, project_a):
    secret = project_a.secrets.get()
    assert as_alice.post(f"/projects/alpha/secrets/{secret.pk}/revoke").status_code == 302
    assert ProjectSecret.authenticate(project_a, project_a.registration_secret, "register") is None
    assert project_a.audit_events.filter(kind="secret.revoked", actor="alice@example.com").exists()


# --- Settings -----------------------------------------------------------------------------------

def _settings(project, **changes):
    data = {"login_mode": project.login_mode, "login_url": project.login_url, "token_format": project.token_format,
            "access_token_ttl": project.access_token_ttl, "refresh_token_ttl": project.refresh_token_ttl,
            "display_name": project.display_name, "logo_url": project.logo_url, "accent_color": project.accent_color,
            "resources_text": "\n".join(project.resources),
            "scopes_text": "\n".join(f"{s['name']} — {s['description']}" for s in project.scopes)}
    for flag in ("cimd_enabled", "open_registration_enabled", "secret_registration_enabled", "signup_enabled",
                 "email_signin_enabled",
                 "device_grant"):
        if getattr(project, flag):
            data[flag] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_it_saves_settings_audits_them_and_discovery_follows(as_alice, client, project_a):
    assert "registration_endpoint" in client.get("/.well-known/oauth-authorization-server/p/alpha").json()
    data = _settings(project_a, open_registration_enabled=None, secret_registration_enabled=None, cimd_enabled=None,
                     scopes_text="mcp:tools — Use tools\nfiles:read — Read your files",
                     resources_text="https://files.alpha.example/mcp\nhttps://mcp.alpha.example/mcp",
                     token_format="jwt", display_name="Alpha Inc.", accent_color="#112233")
    assert as_alice.post("/projects/alpha/settings", data).status_code == 302
    project_a.refresh_from_db()
    assert project_a.scopes == [{"name": "mcp:tools", "description": "Use tools"},
                                {"name": "files:read", "description": "Read your files"}]
    assert project_a.default_resource == "https://files.alpha.example/mcp" and project_a.token_format == "jwt"
    event = project_a.audit_events.get(kind="settings.changed")
    assert set(event.detail["changed"]) == {"cimd_enabled", "open_registration_enabled", "secret_registration_enabled",
                                            "token_format", "display_name", "accent_color", "resources", "scopes"}
    metadata = client.get("/.well-known/oauth-authorization-server/p/alpha").json()
    assert "registration_endpoint" not in metadata
    assert metadata["scopes_supported"] == ["mcp:tools", "files:read"]
    assert metadata["client_id_metadata_document_supported"] is False


@pytest.mark.parametrize("changes", [
    {"login_mode": "handoff", "login_url": ""},
    {"scopes_text": "bad scope with spaces"},
    {"scopes_text": ""},
    {"resources_text": "https://a.example/mcp#frag"},
    {"access_token_ttl": "5"},
    {"accent_color": "red"},
    {"logo_url": "http://insecure.example/logo.png"},
])
def test_it_refuses_invalid_settings_and_changes_nothing(as_alice, project_a, changes):
    before = Project.objects.get(pk=project_a.pk)
    assert as_alice.post("/projects/alpha/settings", _settings(project_a, **changes)).status_code == 400
    after = Project.objects.get(pk=project_a.pk)
    assert (after.updated_at, after.scopes, after.resources) == (before.updated_at, before.scopes, before.resources)
    assert not project_a.audit_events.filter(kind="settings.changed").exists()


def test_it_switches_to_handoff_login_with_a_login_url(as_alice, project_a):
    data = _settings(project_a, login_mode="handoff", login_url="https://app.alpha.example/login")
    assert as_alice.post("/projects/alpha/settings", data).status_code == 302
    project_a.refresh_from_db()
    assert (project_a.login_mode, project_a.login_url) == ("handoff", "https://app.alpha.example/login")


def test_it_rotates_the_signing_key(as_alice, project_a):
    old = SigningKey.current(project_a)
    assert as_alice.post("/projects/alpha/settings/rotate-key").status_code == 302
    assert SigningKey.current(project_a).kid != old.kid
    assert project_a.audit_events.filter(kind="key.rotated", actor="alice@example.com").exists()


# --- Members ------------------------------------------------------------------------------------

def test_an_owner_adds_a_member_by_email_and_changes_their_role(as_alice, project_a, bob):
    assert as_alice.post("/projects/alpha/members", {"email": "BOB@example.com", "role": "viewer"}).status_code == 302
    member = project_a.memberships.get(user=bob)
    assert member.role == "viewer"
    assert as_alice.post(f"/projects/alpha/members/{member.pk}", {"role": "admin"}).status_code == 302
    assert project_a.role_of(bob) == "admin"
    assert {"member.added", "member.role_changed"} <= set(project_a.audit_events.values_list("kind", flat=True))


def test_it_refuses_to_add_someone_who_is_not_an_operator(as_alice, project_a, end_user_a):
    assert as_alice.post("/projects/alpha/members", {"email": "eve@example.com", "role": "admin"}).status_code == 400
    assert project_a.memberships.count() == 1


def test_an_admin_cannot_manage_members(client, project_a, bob, carol):
    ProjectMember.objects.create(project=project_a, user=bob, role="admin")
    client.force_login(bob)
    assert client.post("/projects/alpha/members", {"email": "carol@example.com", "role": "owner"}).status_code == 403
    assert project_a.role_of(carol) is None


def test_the_last_owner_cannot_be_demoted_or_removed(as_alice, project_a, alice):
    member = project_a.memberships.get(user=alice)
    as_alice.post(f"/projects/alpha/members/{member.pk}", {"role": "viewer"})
    as_alice.post(f"/projects/alpha/members/{member.pk}", {"action": "remove"})
    assert project_a.role_of(alice) == "owner"


# --- Audit log ----------------------------------------------------------------------------------

def test_it_filters_the_audit_log_by_kind_client_and_date(as_alice, project_a, project_b):
    AuditEvent.record(project_a, "token.issued", client_id="client-1")
    AuditEvent.record(project_a, "token.issued", client_id="client-2")
    old = AuditEvent.record(project_a, "token.revoked", client_id="client-1")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    AuditEvent.record(project_b, "token.issued", client_id="client-1")

    def kinds(**params):
        return [(e.kind, e.client_id) for e in as_alice.get("/projects/alpha/audit", params).context["page"]]

    assert kinds(kind="token.issued") == [("token.issued", "client-2"), ("token.issued", "client-1")]
    assert kinds(client="client-1") == [("token.issued", "client-1"), ("token.revoked", "client-1")]
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert ("token.revoked", "client-1") not in kinds(since=since)
    until = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert kinds(until=until) == [("token.revoked", "client-1")]


def test_sign_up_can_be_closed(client, settings, db):
    settings.OPERATOR_SIGNUP_ENABLED = False
    assert client.get("/signup").status_code == 404
    assert client.post("/signup", {"email": "dana@example.com", "password": PASSWORD}).status_code == 404
    assert not User.objects.filter(username="dana@example.com").exists()
    assert "Create an operator account" not in client.get("/login").content.decode()
