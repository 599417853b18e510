"""`python manage.py createenduser --project S --email E --password P --json` → {"subject"} (API.md)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from projects.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = StringIO()
    call_command("createenduser", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.real_password_hasher
def test_it_creates_an_end_user_of_the_project(project_a):
    result = run("--project", "alpha", "--email", "Dana@Example.com", "--password", PASSWORD)
    user = User.objects.get(project=project_a, email="dana@example.com")
    assert result == {"subject": user.subject}
    assert user.subject.startswith("usr_")
    assert not user.is_operator and user.check_password(PASSWORD)
    assert user.password.startswith("pbkdf2_sha256$")


def test_it_refuses_a_taken_email_in_the_same_project(project_a, end_user_a):
    with pytest.raises(CommandError):
        run("--project", "alpha", "--email", "eve@example.com", "--password", PASSWORD)


def test_the_same_email_may_exist_in_another_project(project_b, end_user_a):
    result = run("--project", "bravo", "--email", "eve@example.com", "--password", PASSWORD)
    assert User.objects.get(project=project_b, email="eve@example.com").subject == result["subject"]


def test_it_refuses_an_unknown_project(db):
    with pytest.raises(CommandError):
        run("--project", "nope", "--email", "x@example.com", "--password", PASSWORD)


@pytest.mark.parametrize("email,password", [("not-an-email", PASSWORD), ("x@example.com", "short")])
def test_it_refuses_bad_input(project_a, email, password):
    with pytest.raises(CommandError):
        run("--project", "alpha", "--email", email, "--password", password)
    assert not User.objects.filter(project=project_a).exists()


def test_the_operator_vouches_for_the_email_by_default(project_a):
    run("--project", "alpha", "--email", "dana@example.com", "--password", PASSWORD)
    assert User.objects.get(project=project_a, email="dana@example.com").email_verified_at is not None


def test_unverified_leaves_it_unverified_and_sends_a_link(project_a, inbox):
    run("--project", "alpha", "--email", "dana@example.com", "--password", PASSWORD, "--unverified")
    assert User.objects.get(project=project_a, email="dana@example.com").email_verified_at is None
    assert inbox.last_link("dana@example.com").startswith("/p/alpha/oauth/verify-email?token=")
