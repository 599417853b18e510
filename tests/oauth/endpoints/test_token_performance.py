"""Hot paths stay cheap: few queries per token, one transaction, no password hasher, warm introspection from Redis."""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oauth.models import Application, RefreshToken
from tests.token_support import basic, introspect, make_code, post_form, redeem, refresh, token_url


def statements(queries) -> list[str]:
    """The SQL that reaches tables (savepoints are the test's own transaction nesting)."""
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def test_a_code_redemption_takes_a_handful_of_queries(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)

    with CaptureQueriesContext(connection) as queries:
        assert redeem(client, public_client_a, code, verifier).status_code == 200

    # project (cold cache), client, the code, [tokens stored + code spent: one statement], client used
    assert len(statements(queries)) <= (5 if connection.vendor == "postgresql" else 8)


def test_with_openid_connect_on_a_code_is_read_once(client, project_a, public_client_a, end_user_a):
    """The OpenID Connect dispatcher reads the code to choose the grant; validation reuses that row."""
    project_a.openid = True
    project_a.save()
    code, verifier = make_code(public_client_a, end_user_a, scope="openid mcp:tools offline_access")
    redeem(client, public_client_a, *make_code(public_client_a, end_user_a))  # warm: project, client, keys

    with CaptureQueriesContext(connection) as queries:
        response = redeem(client, public_client_a, code, verifier)

    assert response.status_code == 200 and "id_token" in response.json()
    assert len([sql for sql in statements(queries) if sql.startswith('SELECT') and '"oauth_grant"' in sql]) == 1


def test_a_refresh_takes_a_handful_of_queries(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()

    with CaptureQueriesContext(connection) as queries:
        assert refresh(client, public_client_a, issued["refresh_token"]).status_code == 200

    # client, the refresh token, [tokens stored + old token spent: one statement]
    assert len(statements(queries)) <= (3 if connection.vendor == "postgresql" else 6)


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
    # (the embedded default's cache is itself a table, mcpauth_cache: its reads are the cache's)
    assert [q for q in statements(queries) if "projectsecret" not in q and "mcpauth_cache" not in q] == []


# --- durable single use; a transaction that spends nothing commits without waiting (TOKEN_ASYNC_COMMIT) ----
# The view's transaction is a savepoint inside the test's own, so its SET LOCAL is still visible here.


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def spending(queries, table: str) -> list[str]:
    """The statements that spend a row of `table` (a code, a refresh token) while storing tokens."""
    return [sql for sql in statements(queries) if sql.startswith("WITH guarded AS (UPDATE") and table in sql]


@pytest.mark.postgres
def test_a_redemption_spends_the_code_with_a_synchronous_commit(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)

    with CaptureQueriesContext(connection) as queries:
        assert redeem(client, public_client_a, code, verifier).status_code == 200

    # A crash right after the answer must not bring the spent code back: flushed before the response.
    [spend] = spending(queries, "oauth_grant")
    assert "synchronous_commit" not in spend
    assert synchronous_commit() == "on"


@pytest.mark.postgres
def test_a_refresh_spends_the_old_token_with_a_synchronous_commit(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()

    with CaptureQueriesContext(connection) as queries:
        assert refresh(client, public_client_a, issued["refresh_token"]).status_code == 200

    [spend] = spending(queries, "oauth_refreshtoken")
    assert "synchronous_commit" not in spend
    assert synchronous_commit() == "on"


@pytest.mark.postgres
def test_a_client_credentials_token_commits_without_a_flush(client, project_a, confidential_client_a):
    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert synchronous_commit() == "off"


@pytest.mark.postgres
def test_a_replayed_code_revokes_with_a_synchronous_commit(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    assert redeem(client, public_client_a, code, verifier).status_code == 200
    assert synchronous_commit() == "on"

    replay = redeem(client, public_client_a, code, verifier)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert synchronous_commit() == "on"


@pytest.mark.postgres
def test_the_flush_is_kept_when_the_setting_is_off(client, project_a, confidential_client_a, settings):
    settings.TOKEN_ASYNC_COMMIT = False

    response = post_form(client, token_url(project_a), {"grant_type": "client_credentials"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a))

    assert response.status_code == 200
    assert synchronous_commit() == "on"


@pytest.mark.postgres
def test_a_reused_refresh_token_revokes_with_a_synchronous_commit(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    first = redeem(client, public_client_a, code, verifier).json()
    assert refresh(client, public_client_a, first["refresh_token"]).status_code == 200
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(minutes=5))

    reused = refresh(client, public_client_a, first["refresh_token"])  # past the grace window

    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert synchronous_commit() == "on"
