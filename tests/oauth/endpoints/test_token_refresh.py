"""Token endpoint, refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3.1, RFC 9700 §4.14.2)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth.models import AccessToken, RefreshToken
from projects.models import AuditEvent
from tests.token_support import introspect, make_code, redeem, refresh


@pytest.fixture
def session(client, public_client_a, end_user_a):
    """Tokens from a redeemed code: the public client's first access and refresh token."""
    code, verifier = make_code(public_client_a, end_user_a, resource=["https://files.alpha.example/mcp"])
    return redeem(client, public_client_a, code, verifier).json()


def active(client, project, token) -> bool:
    return introspect(client, project, token, project.registration_secret).json()["active"]


def test_it_rotates_the_refresh_token_on_every_use(client, public_client_a, session, project_a):
    response = refresh(client, public_client_a, session["refresh_token"])

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["refresh_token"].startswith("mcprt_") and body["refresh_token"] != session["refresh_token"]
    assert body["access_token"].startswith("mcpat_") and body["access_token"] != session["access_token"]
    assert body["scope"] == session["scope"] and body["token_type"] == "Bearer"
    rows = RefreshToken.objects.order_by("pk")
    assert rows.count() == 2 and rows[0].revoked is not None and rows[1].revoked is None
    assert rows[0].token_family == rows[1].token_family
    assert all(r.token == "" for r in rows)
    assert active(client, project_a, body["access_token"])


def test_it_keeps_the_audience(client, public_client_a, session):
    assert refresh(client, public_client_a, session["refresh_token"]).status_code == 200

    latest = AccessToken.objects.latest("pk")
    assert latest.resource == ["https://files.alpha.example/mcp"]
    assert RefreshToken.objects.latest("pk").resource == ["https://files.alpha.example/mcp"]


def test_it_refuses_a_resource_beyond_the_refresh_token(client, public_client_a, session):
    response = refresh(client, public_client_a, session["refresh_token"], resource="https://mcp.alpha.example/mcp")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert RefreshToken.objects.get().revoked is None


def test_it_narrows_but_never_widens_scope(client, public_client_a, session):
    narrowed = refresh(client, public_client_a, session["refresh_token"], scope="mcp:tools")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "mcp:tools"

    widened = refresh(client, public_client_a, narrowed.json()["refresh_token"], scope="mcp:tools mcp:prompts")

    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"
    assert RefreshToken.objects.filter(revoked__isnull=True).get().scope == "mcp:tools"


def test_it_honours_a_spent_token_inside_the_grace_window(client, public_client_a, session, project_a):
    first = refresh(client, public_client_a, session["refresh_token"]).json()

    again = refresh(client, public_client_a, session["refresh_token"])

    assert again.status_code == 200
    second = again.json()
    assert second["access_token"] not in ("", first["access_token"])
    assert active(client, project_a, first["access_token"]) and active(client, project_a, second["access_token"])
    assert refresh(client, public_client_a, first["refresh_token"]).status_code == 200
    assert refresh(client, public_client_a, second["refresh_token"]).status_code == 200


def test_it_revokes_the_family_when_a_spent_token_is_reused_after_the_grace_window(
        client, public_client_a, session, project_a, settings):
    first = refresh(client, public_client_a, session["refresh_token"]).json()
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(minutes=5))

    reused = refresh(client, public_client_a, session["refresh_token"])

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not AccessToken.objects.exists()
    assert not active(client, project_a, first["access_token"])
    assert AuditEvent.objects.filter(project=project_a, kind="token.refresh_reuse_detected").count() == 1
    assert refresh(client, public_client_a, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_it_refuses_a_revoked_refresh_token_without_grace(client, public_client_a, session, project_a):
    RefreshToken.objects.update(revoked=timezone.now())  # revoked on purpose, never rotated

    response = refresh(client, public_client_a, session["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_it_refuses_an_expired_refresh_token(client, public_client_a, session, project_a):
    RefreshToken.objects.update(created=timezone.now() - timedelta(seconds=project_a.refresh_token_ttl + 1))

    response = refresh(client, public_client_a, session["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_it_refuses_another_clients_refresh_token(client, public_client_a, session, project_a):
    from tests.conftest import _public_client

    other = _public_client(project_a, name="Other client")

    response = refresh(client, other, session["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert RefreshToken.objects.get().revoked is None


def test_it_refuses_a_refresh_token_at_another_project(client, public_client_a, session, project_b):
    from tests.token_support import post_form

    data = {"grant_type": "refresh_token", "refresh_token": session["refresh_token"],
            "client_id": public_client_a.client_id}

    response = post_form(client, f"/p/{project_b.slug}/oauth/token", data)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_requires_the_confidential_clients_secret(client, confidential_client_a, end_user_a):
    code, verifier = make_code(confidential_client_a, end_user_a)
    tokens = redeem(client, confidential_client_a, code, verifier).json()
    from tests.token_support import post_form, token_url

    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": confidential_client_a.client_id}
    response = post_form(client, token_url(confidential_client_a.project), data)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert refresh(client, confidential_client_a, tokens["refresh_token"]).status_code == 200
