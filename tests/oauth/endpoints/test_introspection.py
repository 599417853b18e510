"""Introspection (RFC 7662) at /oauth/introspect and the mcpauth alias /api/oauth/introspect."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oauth.models import AccessToken
from projects.models import ProjectSecret
from tests.token_support import basic, make_code, post_form, redeem

FIELDS = {"active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "token_type"}


@pytest.fixture
def issued(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    return redeem(client, public_client_a, code, verifier).json()


def url(project, alias=False) -> str:
    return f"/p/{project.slug}/{'api/' if alias else ''}oauth/introspect"


@pytest.mark.parametrize("alias", [False, True])
def test_it_describes_an_active_token_to_a_project_secret(client, issued, project_a, public_client_a, end_user_a,
                                                          alias):
    response = post_form(client, url(project_a, alias), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    body = response.json()
    assert FIELDS <= set(body)
    row = AccessToken.objects.get()
    assert body == {"active": True, "scope": "mcp:tools offline_access", "client_id": public_client_a.client_id,
                    "sub": end_user_a.subject, "aud": "https://mcp.alpha.example/mcp",
                    "iss": "http://127.0.0.1:8000/p/alpha", "exp": int(row.expires.timestamp()),
                    "iat": int(row.created.timestamp()), "token_type": "Bearer"}


def test_it_accepts_a_json_body_on_the_alias(client, issued, project_a):
    response = client.post(url(project_a, alias=True), {"token": issued["access_token"]}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 200
    assert response.json()["active"] is True


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded; charset=UTF-8", "multipart/form-data"])
def test_it_reads_the_token_from_a_form_with_a_charset_or_a_multipart_body(client, issued, project_a, content_type):
    token = issued["access_token"]
    if content_type.startswith("multipart"):  # the test client encodes a dict as multipart/form-data
        response = client.post(url(project_a), {"token": token},
                               HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")
    else:
        response = client.post(url(project_a), f"token={token}", content_type=content_type,
                               HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 200
    assert response.json()["active"] is True


def test_it_refuses_basic_credentials_holding_a_nul(client, issued, project_a, confidential_client_a):
    response = post_form(client, url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=basic(confidential_client_a, "mcpcs_\x00nope"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


@pytest.mark.parametrize("how", ["basic", "post"])
def test_it_accepts_a_confidential_client_of_the_project(client, issued, project_a, confidential_client_a, how):
    if how == "basic":
        response = post_form(client, url(project_a), {"token": issued["access_token"]},
                             HTTP_AUTHORIZATION=basic(confidential_client_a))
    else:
        response = post_form(client, url(project_a), {"token": issued["access_token"],
                                                      "client_id": confidential_client_a.client_id,
                                                      "client_secret": confidential_client_a.plain_secret})

    assert response.status_code == 200
    assert response.json()["active"] is True


def test_it_refuses_a_public_client(client, issued, project_a, public_client_a):
    response = post_form(client, url(project_a), {"token": issued["access_token"], "client_id": public_client_a.client_id})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_an_anonymous_caller(client, issued, project_a):
    response = post_form(client, url(project_a), {"token": issued["access_token"]})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


def test_it_refuses_a_wrong_client_secret(client, issued, project_a, confidential_client_a):
    response = post_form(client, url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=basic(confidential_client_a, "mcpcs_nope"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_it_refuses_a_secret_without_the_introspect_permission(client, issued, project_a):
    _, secret = ProjectSecret.issue(project_a, "registration only", ["register"])

    response = post_form(client, url(project_a), {"token": issued["access_token"]}, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_it_refuses_another_projects_secret_and_client(client, issued, project_a, project_b, confidential_client_b):
    by_secret = post_form(client, url(project_a), {"token": issued["access_token"]},
                          HTTP_AUTHORIZATION=f"Bearer {project_b.registration_secret}")
    by_client = post_form(client, url(project_a), {"token": issued["access_token"]},
                          HTTP_AUTHORIZATION=basic(confidential_client_b))

    assert by_secret.status_code == 401 and by_secret.json()["error"] == "invalid_token"
    assert by_client.status_code == 401 and by_client.json()["error"] == "invalid_client"


def test_a_token_of_project_a_is_inactive_at_project_b(client, issued, project_a, project_b):
    # Warm the cache at A first: B must not be answered from A's entry either.
    post_form(client, url(project_a), {"token": issued["access_token"]},
              HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    response = post_form(client, url(project_b), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=f"Bearer {project_b.registration_secret}")

    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize("token", ["mcpat_unknown", "not-even-a-token", "x" * 5000])
def test_it_answers_only_active_false_for_unknown_tokens(client, project_a, token):
    response = post_form(client, url(project_a), {"token": token},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_it_answers_only_active_false_for_an_expired_token(client, issued, project_a):
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))

    response = post_form(client, url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.json() == {"active": False}


def test_it_answers_only_active_false_for_a_refresh_token(client, issued, project_a):
    response = post_form(client, url(project_a), {"token": issued["refresh_token"]},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.json() == {"active": False}


def test_it_requires_the_token_parameter(client, project_a):
    response = post_form(client, url(project_a), {}, HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_warm_answer_comes_from_the_cache_without_reading_tokens(client, issued, project_a, confidential_client_a):
    def ask():
        return post_form(client, url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert ask().json()["active"] is True
    with CaptureQueriesContext(connection) as queries:
        again = ask()

    assert again.json()["active"] is True
    assert not [q for q in queries.captured_queries if "accesstoken" in q["sql"].lower()]
    rows = [q for q in queries.captured_queries if "mcpauth_cache" not in q["sql"]]  # the embedded cache is a table
    assert len(rows) <= 1  # the caller's client row only


@pytest.mark.parametrize("how", ["deleted", "disabled"])
def test_a_cached_token_stops_introspecting_active_when_its_client_goes(client, issued, project_a, public_client_a,
                                                                        how):
    def ask():
        return post_form(client, url(project_a), {"token": issued["access_token"]},
                         HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}").json()

    assert ask()["active"] is True  # cached now
    if how == "deleted":
        public_client_a.delete()
    else:
        public_client_a.disabled_at = timezone.now()
        public_client_a.save()

    assert ask() == {"active": False}


def test_it_answers_cors_preflight_and_lets_pages_read_the_answer(client, issued, project_a):
    preflight = client.options(url(project_a), HTTP_ORIGIN="https://inspector.example",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    answer = post_form(client, url(project_a), {"token": issued["access_token"]},
                       HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}", HTTP_ORIGIN="https://inspector.example")

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert preflight["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert {"Authorization", "Content-Type", "MCP-Protocol-Version"} <= set(preflight["Access-Control-Allow-Headers"].split(", "))
    assert preflight["Access-Control-Max-Age"] == "86400"
    # Browsers read only these two on an actual answer (Fetch standard); the preflight's belong to the preflight
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in answer["Access-Control-Expose-Headers"]
    assert not answer.has_header("Access-Control-Max-Age")
