"""Revocation feed (API.md "Revocation feed"): the jtis of revoked JWT access tokens, by cursor."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from jwcrypto.common import base64url_decode

from oauth.models import AccessToken, Application, RefreshToken, RevokedToken
from oauth.tokens import feed, reaper
from oauth.tokens import revoke as revoking
from projects.models import Project, ProjectSecret
from tests.token_support import basic, make_code, post_form, redeem, refresh


def jwt_format(project):
    project.token_format = Project.TokenFormat.JWT
    project.save()
    return project


@pytest.fixture
def jwt_a(project_a):
    return jwt_format(project_a)


def feed_payload(token: str) -> bytes:
    return base64url_decode(token.split(".")[1])


def jti(token: str) -> str:
    return json.loads(feed_payload(token))["jti"]


def issue(http, client, user) -> dict:
    code, verifier = make_code(client, user)
    response = redeem(http, client, code, verifier)
    assert response.status_code == 200
    return response.json()


def read_feed(http, project, secret=None, **params):
    secret = secret if secret is not None else project.registration_secret
    return http.get(f"/p/{project.slug}/oauth/revocations", params, HTTP_AUTHORIZATION=f"Bearer {secret}")


def revoke(http, client, token):
    data = {"token": token}
    headers = {}
    if client.client_type == Application.CLIENT_CONFIDENTIAL:
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        data["client_id"] = client.client_id
    response = post_form(http, f"/p/{client.project.slug}/oauth/revoke", data, **headers)
    assert response.status_code == 200
    return response


def listed(http, project, **params) -> list[str]:
    response = read_feed(http, project, **params)
    assert response.status_code == 200
    return [entry["jti"] for entry in response.json()["revoked"]]


def test_it_lists_a_revoked_jwt_access_token_with_its_expiry(client, jwt_a, confidential_client_a, end_user_a):
    issued = issue(client, confidential_client_a, end_user_a)
    before = int(timezone.now().timestamp())

    revoke(client, confidential_client_a, issued["access_token"])
    response = read_feed(client, jwt_a)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    claims = json.loads(feed_payload(issued["access_token"]))
    assert body["revoked"] == [{"jti": claims["jti"], "revoked_at": body["revoked"][0]["revoked_at"], "exp": claims["exp"]}]
    assert before <= body["revoked"][0]["revoked_at"] <= claims["exp"]
    assert body["next"] == str(RevokedToken.objects.get(project=jwt_a).pk)


def test_it_lists_a_token_revoked_alone_by_one_statement(client, jwt_a, confidential_client_a, project_a):
    # client_credentials: no refresh token, nothing refers to the row (the one-statement path).
    response = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))
    assert response.status_code == 200
    token = response.json()["access_token"]

    revoke(client, confidential_client_a, token)

    assert listed(client, jwt_a) == [jti(token)]
    assert not AccessToken.objects.exists()


def test_it_lists_every_access_token_of_a_revoked_refresh_family(client, jwt_a, public_client_a, end_user_a):
    first = issue(client, public_client_a, end_user_a)
    second = refresh(client, public_client_a, first["refresh_token"]).json()

    revoke(client, public_client_a, second["refresh_token"])

    assert sorted(listed(client, jwt_a)) == sorted([jti(first["access_token"]), jti(second["access_token"])])


def test_it_lists_the_tokens_of_a_reused_refresh_token(client, jwt_a, public_client_a, end_user_a):
    first = issue(client, public_client_a, end_user_a)
    second = refresh(client, public_client_a, first["refresh_token"]).json()
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(minutes=5))

    reused = refresh(client, public_client_a, first["refresh_token"])

    assert reused.json()["error"] == "invalid_grant"
    assert sorted(listed(client, jwt_a)) == sorted([jti(first["access_token"]), jti(second["access_token"])])


def test_it_lists_the_tokens_of_a_replayed_code(client, jwt_a, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()

    replay = redeem(client, public_client_a, code, verifier)

    assert replay.json()["error"] == "invalid_grant"
    assert listed(client, jwt_a) == [jti(issued["access_token"])]


def test_it_lists_the_tokens_of_a_deleted_client_and_of_a_deleted_end_user(client, jwt_a, public_client_a,
                                                                           confidential_client_a, end_user_a):
    by_client = issue(client, public_client_a, end_user_a)
    public_client_a.delete()
    assert listed(client, jwt_a) == [jti(by_client["access_token"])]

    by_user = issue(client, confidential_client_a, end_user_a)
    end_user_a.delete()
    assert listed(client, jwt_a) == [jti(by_client["access_token"]), jti(by_user["access_token"])]


def test_it_lists_the_tokens_of_a_client_whose_tokens_the_operator_revoked(client, jwt_a, public_client_a, end_user_a):
    issued = issue(client, public_client_a, end_user_a)

    assert revoking.client_tokens(public_client_a) == 1

    assert listed(client, jwt_a) == [jti(issued["access_token"])]


def test_it_does_not_list_opaque_tokens(client, project_a, confidential_client_a, end_user_a):
    issued = issue(client, confidential_client_a, end_user_a)

    revoke(client, confidential_client_a, issued["access_token"])

    assert read_feed(client, project_a).json() == {"revoked": [], "next": "0"}
    assert not RevokedToken.objects.exists()


def test_it_continues_from_the_cursor_and_pages(client, jwt_a, confidential_client_a, end_user_a, monkeypatch):
    tokens = [issue(client, confidential_client_a, end_user_a)["access_token"] for _ in range(3)]
    for token in tokens:
        revoke(client, confidential_client_a, token)
    monkeypatch.setattr(feed, "PAGE", 2)

    first = read_feed(client, jwt_a).json()
    second = read_feed(client, jwt_a, since=first["next"]).json()
    third = read_feed(client, jwt_a, since=second["next"]).json()

    assert [e["jti"] for e in first["revoked"] + second["revoked"]] == [jti(t) for t in tokens]
    assert len(first["revoked"]) == 2
    assert third == {"revoked": [], "next": second["next"]}


def test_it_refuses_a_bad_cursor(client, jwt_a):
    for bad in ("abc", "-1", "1.5", "9" * 20, "", "１"):
        response = read_feed(client, jwt_a, since=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"] == "invalid_request"


def test_it_refuses_a_repeated_cursor(client, jwt_a):
    response = client.get(f"/p/{jwt_a.slug}/oauth/revocations?since=1&since=2",
                          HTTP_AUTHORIZATION=f"Bearer {jwt_a.registration_secret}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_it_requires_a_project_secret_with_introspect(client, jwt_a):
    _, register_only = ProjectSecret.issue(jwt_a, "register only", ["register"])

    missing = client.get(f"/p/{jwt_a.slug}/oauth/revocations")
    wrong_permission = read_feed(client, jwt_a, secret=register_only)
    unknown = read_feed(client, jwt_a, secret="mcps_" + "x" * 43)

    for response in (missing, wrong_permission, unknown):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_another_projects_secret_and_never_lists_its_tokens(client, jwt_a, project_b, public_client_a,
                                                                       public_client_b, end_user_a, end_user_b):
    jwt_format(project_b)
    mine = issue(client, public_client_a, end_user_a)
    theirs = issue(client, public_client_b, end_user_b)
    revoke(client, public_client_a, mine["refresh_token"])
    revoke(client, public_client_b, theirs["refresh_token"])

    foreign = read_feed(client, jwt_a, secret=project_b.registration_secret)

    assert foreign.status_code == 401 and foreign.json()["error"] == "invalid_token"
    assert listed(client, jwt_a) == [jti(mine["access_token"])]
    assert listed(client, project_b) == [jti(theirs["access_token"])]


def test_it_leaves_out_entries_past_expiry_and_the_reaper_deletes_them(client, jwt_a, confidential_client_a,
                                                                        end_user_a):
    issued = issue(client, confidential_client_a, end_user_a)
    revoke(client, confidential_client_a, issued["access_token"])
    RevokedToken.objects.update(expires=timezone.now() - timedelta(seconds=1))

    assert listed(client, jwt_a) == []
    report = reaper.reap_project(jwt_a, timezone.now())

    assert report.revoked_tokens == 1
    assert not RevokedToken.objects.exists()


def test_the_reaper_keeps_entries_of_tokens_not_yet_expired(client, jwt_a, confidential_client_a, end_user_a):
    issued = issue(client, confidential_client_a, end_user_a)
    revoke(client, confidential_client_a, issued["access_token"])

    report = reaper.reap_project(jwt_a, timezone.now())

    assert report.revoked_tokens == 0
    assert listed(client, jwt_a) == [jti(issued["access_token"])]


def test_metadata_advertises_the_feed_for_jwt_projects_only(client, jwt_a, project_b):
    ours = client.get(f"/p/{jwt_a.slug}/.well-known/oauth-authorization-server").json()
    opaque = client.get(f"/p/{project_b.slug}/.well-known/oauth-authorization-server").json()

    assert ours["mcpauth_revocation_feed_endpoint"] == "http://127.0.0.1:8000/p/alpha/oauth/revocations"
    assert "mcpauth_revocation_feed_endpoint" not in opaque
