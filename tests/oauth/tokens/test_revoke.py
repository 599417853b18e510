"""Every way tokens end goes through oauth.tokens.revoke, which tombstones their cached introspection answers:
after each one, introspection answers exactly {"active": false} at once, though the answer was cached
as active just before (the cache is warmed first in every test)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import OperatorToken
from oauth.models import AccessToken, RefreshToken
from oauth.tokens import issue as tokens
from projects.models import User
from tests.token_support import basic, introspect, make_code, post_form, redeem, refresh

INACTIVE = {"active": False}


@pytest.fixture
def issued(client, public_client_a, end_user_a, project_a):
    """A code redeemed for an access and a refresh token, each introspected (cached) as active."""
    code, verifier = make_code(public_client_a, end_user_a)
    body = redeem(client, public_client_a, code, verifier).json()
    body["code"], body["verifier"] = code, verifier
    assert active(client, project_a, body["access_token"])
    assert tokens.cached_answer(tokens.checksum(body["access_token"])) not in (None, b"-")
    return body


def active(http, project, token) -> bool:
    answer = introspect(http, project, token, project.registration_secret)
    assert answer.status_code == 200
    return answer.json() != INACTIVE


@pytest.fixture
def operator_api(alice):
    return {"HTTP_AUTHORIZATION": f"Bearer {OperatorToken.issue(alice, 'ci')[1]}"}


def test_it_ends_a_grant_revoked_at_the_rfc7009_endpoint(client, project_a, public_client_a, issued):
    response = post_form(client, "/p/alpha/oauth/revoke",
                         {"token": issued["refresh_token"], "client_id": public_client_a.client_id})

    assert response.status_code == 200
    assert not active(client, project_a, issued["access_token"])
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_it_ends_what_a_replayed_code_issued(client, project_a, public_client_a, issued):
    replay = redeem(client, public_client_a, issued["code"], issued["verifier"])

    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


def test_it_ends_the_family_of_a_reused_refresh_token(client, project_a, public_client_a, issued):
    rotated = refresh(client, public_client_a, issued["refresh_token"]).json()
    assert active(client, project_a, rotated["access_token"])
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(minutes=5))

    reuse = refresh(client, public_client_a, issued["refresh_token"])

    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    assert not active(client, project_a, rotated["access_token"])


@pytest.mark.parametrize("path", ["/projects/alpha/clients/{pk}/revoke-tokens", "/projects/alpha/clients/{pk}/delete"])
def test_it_ends_a_clients_tokens_from_the_dashboard(client, alice, project_a, public_client_a, issued, path):
    client.force_login(alice)

    assert client.post(path.format(pk=public_client_a.pk)).status_code == 302
    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


def test_it_ends_a_disabled_clients_tokens_from_the_dashboard(client, alice, project_a, public_client_a, issued):
    client.force_login(alice)

    client.post(f"/projects/alpha/clients/{public_client_a.pk}/disable", {"disabled": "1"})

    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("method,path", [("post", "/revoke-tokens"), ("post", "/disable"), ("delete", "")])
def test_it_ends_a_clients_tokens_from_the_management_api(client, operator_api, project_a, public_client_a, issued,
                                                         method, path):
    response = getattr(client, method)(f"/api/v1/projects/alpha/clients/{public_client_a.pk}{path}", **operator_api)

    assert response.status_code in (200, 204)
    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


def test_it_ends_what_an_end_user_granted_from_the_dashboard(client, alice, project_a, end_user_a, issued):
    client.force_login(alice)

    assert client.post(f"/projects/alpha/users/{end_user_a.pk}/revoke").status_code == 302
    assert not active(client, project_a, issued["access_token"])
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


def test_it_ends_what_an_end_user_granted_from_the_management_api(client, operator_api, project_a, end_user_a, issued):
    response = client.post(f"/api/v1/projects/alpha/end-users/{end_user_a.pk}/revoke", **operator_api)

    assert response.status_code == 200 and response.json() == {"live_tokens": 1}
    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


def test_it_ends_a_deleted_end_users_tokens(client, project_a, end_user_a, issued):
    User.objects.filter(pk=end_user_a.pk).delete()

    assert not active(client, project_a, issued["access_token"])
    assert not AccessToken.objects.exists()


def test_it_ends_a_client_deleted_through_rfc7592(client, project_a, confidential_client_a, end_user_a):
    token = post_form(client, "/p/alpha/oauth/token", {"grant_type": "client_credentials"},
                      HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"]
    assert active(client, project_a, token)

    confidential_client_a.delete()  # what RFC 7592 DELETE and the reaper do

    assert not active(client, project_a, token)


def test_it_leaves_other_clients_and_projects_alone(client, operator_api, project_a, project_b, public_client_a,
                                                    confidential_client_a, public_client_b, end_user_b, issued):
    code, verifier = make_code(public_client_b, end_user_b)
    theirs = redeem(client, public_client_b, code, verifier).json()["access_token"]
    mine = post_form(client, "/p/alpha/oauth/token", {"grant_type": "client_credentials"},
                     HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"]

    client.post(f"/api/v1/projects/alpha/clients/{public_client_a.pk}/revoke-tokens", **operator_api)

    assert not active(client, project_a, issued["access_token"])
    assert active(client, project_a, mine)
    assert active(client, project_b, theirs)
