"""Revocation endpoint (RFC 7009): client-authenticated, 200 for unknown tokens, families end together."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oauth.models import AccessToken, RefreshToken
from oauth.tokens import revoke
from oauth.tokens.issue import cached_answer, checksum
from projects.models import AuditEvent
from tests.token_support import basic, introspect, make_code, post_form, redeem, refresh


def revoke_url(project) -> str:
    return f"/p/{project.slug}/oauth/revoke"


def tokens_for(http, client, user):
    code, verifier = make_code(client, user)
    return redeem(http, client, code, verifier).json()


def active(http, project, token) -> bool:
    return introspect(http, project, token, project.registration_secret).json()["active"]


def test_it_revokes_a_refresh_token_and_its_whole_family(client, public_client_a, end_user_a, project_a):
    first = tokens_for(client, public_client_a, end_user_a)
    second = refresh(client, public_client_a, first["refresh_token"]).json()

    response = post_form(client, revoke_url(project_a), {"token": second["refresh_token"],
                                                         "client_id": public_client_a.client_id})

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not AccessToken.objects.exists()
    assert not active(client, project_a, first["access_token"])
    assert not active(client, project_a, second["access_token"])
    assert refresh(client, public_client_a, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(project=project_a, kind="token.revoked").count() == 1


def test_it_revokes_an_access_token_and_invalidates_its_cached_introspection(client, confidential_client_a,
                                                                             end_user_a, project_a):
    issued = tokens_for(client, confidential_client_a, end_user_a)
    assert active(client, project_a, issued["access_token"])  # now cached
    assert cached_answer(checksum(issued["access_token"])).startswith(b"%d " % project_a.pk)

    response = post_form(client, revoke_url(project_a), {"token": issued["access_token"],
                                                         "token_type_hint": "access_token"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert not AccessToken.objects.exists()
    assert not active(client, project_a, issued["access_token"])
    assert refresh(client, confidential_client_a, issued["refresh_token"]).json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(project=project_a, kind="token.revoked").count() == 1


def test_it_answers_200_for_an_unknown_token(client, public_client_a, project_a):
    response = post_form(client, revoke_url(project_a), {"token": "mcpat_unknown", "client_id": public_client_a.client_id})

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(kind="token.revoked").exists()


def test_it_requires_client_authentication(client, confidential_client_a, end_user_a, project_a):
    issued = tokens_for(client, confidential_client_a, end_user_a)

    anonymous = post_form(client, revoke_url(project_a), {"token": issued["access_token"]})
    wrong = post_form(client, revoke_url(project_a), {"token": issued["access_token"]},
                      HTTP_AUTHORIZATION=basic(confidential_client_a, "mcpcs_wrong"))

    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert active(client, project_a, issued["access_token"])


def test_it_requires_the_token_parameter(client, public_client_a, project_a):
    response = post_form(client, revoke_url(project_a), {"client_id": public_client_a.client_id})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_client_cannot_revoke_another_clients_token(client, public_client_a, confidential_client_a,
                                                      end_user_a, project_a):
    issued = tokens_for(client, public_client_a, end_user_a)

    response = post_form(client, revoke_url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert active(client, project_a, issued["access_token"])


def test_a_token_of_project_a_cannot_be_revoked_through_project_b(client, public_client_a, confidential_client_b,
                                                                  end_user_a, project_a, project_b):
    issued = tokens_for(client, public_client_a, end_user_a)

    through_b = post_form(client, revoke_url(project_b), {"token": issued["refresh_token"]},
                          HTTP_AUTHORIZATION=basic(confidential_client_b))
    a_client_at_b = post_form(client, revoke_url(project_b), {"token": issued["refresh_token"],
                                                               "client_id": public_client_a.client_id})

    assert through_b.status_code == 200
    assert a_client_at_b.status_code == 401 and a_client_at_b.json()["error"] == "invalid_client"
    assert RefreshToken.objects.get().revoked is None
    assert active(client, project_a, issued["access_token"])


def test_it_revokes_a_refreshed_access_token_and_its_whole_family(client, confidential_client_a, end_user_a,
                                                                  project_a):
    first = tokens_for(client, confidential_client_a, end_user_a)
    second = refresh(client, confidential_client_a, first["refresh_token"]).json()
    assert active(client, project_a, first["access_token"]) and active(client, project_a, second["access_token"])

    response = post_form(client, revoke_url(project_a), {"token": second["access_token"]},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert not RefreshToken.objects.filter(access_token__isnull=False).exists()
    assert not active(client, project_a, first["access_token"])
    assert not active(client, project_a, second["access_token"])
    assert refresh(client, confidential_client_a, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(project=project_a, kind="token.revoked").count() == 1


def test_it_revokes_an_access_token_without_a_refresh_token(client, confidential_client_a, project_a):
    token = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                      HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"]
    other = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                      HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"]
    assert active(client, project_a, token)  # now cached

    response = post_form(client, revoke_url(project_a), {"token": token, "token_type_hint": "access_token"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert list(AccessToken.objects.values_list("token_checksum", flat=True)) == [checksum(other)]
    assert cached_answer(checksum(token)) is not None and not active(client, project_a, token)
    assert active(client, project_a, other)
    assert AuditEvent.objects.filter(project=project_a, kind="token.revoked").count() == 1


@pytest.mark.postgres
def test_it_revokes_a_lone_access_token_with_one_statement_after_its_lookups(client, confidential_client_a, project_a):
    tokens = [post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                        HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"] for _ in range(2)]
    post_form(client, revoke_url(project_a), {"token": tokens[0]}, HTTP_AUTHORIZATION=basic(confidential_client_a))

    with CaptureQueriesContext(connection) as queries:
        response = post_form(client, revoke_url(project_a), {"token": tokens[1]},
                             HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    # The project and the client come from the process tier; on a busy machine one may be older than
    # its 10 s bound by now and be read again: not the revocation's statements.
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(('SELECT "projects_project"', 'SELECT "oauth_application"'))]
    assert [s.split()[0] for s in statements] == ["SELECT", "WITH"]  # the token; the write, unless carried
    assert statements[0].startswith('SELECT "oauth_accesstoken"')
    assert statements[1].startswith('WITH guarded AS (DELETE FROM "oauth_accesstoken"')
    assert 'NOT EXISTS (SELECT 1 FROM "oauth_refreshtoken"' in statements[1]
    assert 'INSERT INTO "projects_auditevent"' in statements[1]
    assert not AccessToken.objects.exists()
    assert AuditEvent.objects.filter(project=project_a, kind="token.revoked").count() == 2


def test_it_writes_no_event_when_another_revocation_removed_the_token_first(client, confidential_client_a, project_a):
    token = post_form(client, f"/p/{project_a.slug}/oauth/token", {"grant_type": "client_credentials"},
                      HTTP_AUTHORIZATION=basic(confidential_client_a)).json()["access_token"]
    row = AccessToken.objects.get(token_checksum=checksum(token))
    AccessToken.objects.filter(pk=row.pk).delete()  # the other revocation, between our lookup and our write

    revoke.access_token(row, AuditEvent.new(project_a, "token.revoked", client_id=confidential_client_a.client_id))

    assert not AuditEvent.objects.filter(kind="token.revoked").exists()
    assert cached_answer(checksum(token)) is not None  # tombstoned all the same
