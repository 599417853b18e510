"""`make run`'s bootstrap: an operator, a project and an end user who can sign in on its hosted page."""

import json
from io import StringIO

from django.core.management import call_command

from projects.models import Project, User


def bootstrap() -> tuple[dict, str]:
    out, human = StringIO(), StringIO()
    call_command("bootstrapdemo", "--json", stdout=out)
    call_command("bootstrapdemo", stdout=human)
    return json.loads(out.getvalue()), human.getvalue()


def test_it_creates_an_end_user_of_the_demo_project_and_prints_their_login(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    payload, human = bootstrap()
    project = Project.objects.get(slug="demo")
    end_user = User.objects.get(project=project, email="user@example.com")
    assert payload["end_user_email"] == "user@example.com"
    assert end_user.check_password(payload["end_user_password"])
    assert f"End user sign-in:     user@example.com / {payload['end_user_password']}" in human
    assert f"Operator login:       demo@example.com / {payload['password']}" in human


def test_it_is_idempotent_for_the_end_user(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    first, _ = bootstrap()
    second, _ = bootstrap()
    assert first == second
    assert User.objects.filter(project__slug="demo", email="user@example.com").count() == 1


def test_it_resets_a_lost_end_user_password(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    first, _ = bootstrap()
    (tmp_path / "demo.json").unlink()  # var/ lost, the database kept
    second, _ = bootstrap()
    assert second["end_user_password"] != first["end_user_password"]
    end_user = User.objects.get(project__slug="demo", email="user@example.com")
    assert end_user.check_password(second["end_user_password"])
    assert not end_user.check_password(first["end_user_password"])


def test_it_says_where_emails_go(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    payload, human = bootstrap()
    assert payload["mail"] == f"written to {tmp_path / 'mail'} (set EMAIL_URL to send them)"
    assert f"  Emails:               written to {tmp_path / 'mail'}" in human
    assert User.objects.get(email="user@example.com").email_verified_at is not None  # the operator vouches
