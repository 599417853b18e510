"""Email links (projects.models.AccountToken) on real PostgreSQL: single use holds across connections."""

import pytest
from django.test import Client

from projects.models import AccountToken, User
from tests.conftest import PASSWORD
from tests.oauth.endpoints.test_token_races import concurrently

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def test_four_parallel_resets_with_one_link_exactly_one_sets_its_password(project_a, end_user_a):
    value = AccountToken.issue(end_user_a, AccountToken.Purpose.RESET)
    chosen = ["first passphrase one", "second passphrase two", "third passphrase 3", "fourth passphrase 4"]
    link = f"/p/alpha/oauth/reset-password?token={value}"
    calls = iter(chosen)  # each thread takes its own

    responses = concurrently(4, lambda: Client().post(link, {"password": next(calls)}))

    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    end_user_a.refresh_from_db()
    assert sum(end_user_a.check_password(p) for p in chosen) == 1
    assert not end_user_a.check_password(PASSWORD)


def test_parallel_spends_of_one_verification_link_exactly_one_wins(project_a):
    user = User.objects.create_end_user(project_a, "new@example.com", PASSWORD)
    value = AccountToken.issue(user, AccountToken.Purpose.VERIFY)

    spent = concurrently(4, lambda: AccountToken.spend(AccountToken.Purpose.VERIFY, value, project_a))

    assert sum(row is not None for row in spent) == 1
