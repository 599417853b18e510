"""Hot paths stay cheap: few queries per token, one transaction, no password hasher, warm introspection from Redis."""

from django.contrib.auth.hashers import identify_hasher
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oauth.models import Application
from tests.token_support import basic, introspect, make_code, post_form, redeem, refresh, token_url


def statements(queries) -> list[str]:
    """The SQL that reaches tables (savepoints are the test's own transaction nesting)."""
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_code_redemption_takes_a_handful_of_queries(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)

    with CaptureQueriesContext(connection) as queries:
        assert redeem(client, public_client_a, code, verifier).status_code == 200

    # project (cold cache), client, locked code (+ user), access token, refresh token, code spent, client used
    assert len(statements(queries)) <= 7


def test_a_refresh_takes_a_handful_of_queries(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()

    with CaptureQueriesContext(connection) as queries:
        assert refresh(client, public_client_a, issued["refresh_token"]).status_code == 200

    # client, locked refresh token (+ user), spend it, access token, refresh token
    assert len(statements(queries)) <= 5


def test_client_secrets_are_checked_with_the_fast_keyed_hasher(client, confidential_client_a, project_a):
    stored = Application.objects.filter(pk=confidential_client_a.pk).values_list("client_secret", flat=True).get()
    assert identify_hasher(stored).algorithm == "mcpauth_hmac"

    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200


def test_warm_introspection_reads_no_token_table(client, public_client_a, end_user_a, project_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()
    introspect(client, project_a, issued["access_token"], project_a.registration_secret)

    with CaptureQueriesContext(connection) as queries:
        answer = introspect(client, project_a, issued["access_token"], project_a.registration_secret).json()

    assert answer["active"] is True
    assert [q for q in statements(queries) if "projectsecret" not in q] == []
