"""The operator command line of API.md: each command prints one JSON object with --json."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from projects.models import Project, ProjectMember, ProjectSecret, User


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_createoperator_makes_an_operator():
    result = run("createoperator", "--email", "Op@Example.com", "--password", "a long password 1")
    user = User.objects.get(username="op@example.com")
    assert result["email"] == "op@example.com"
    assert user.is_operator and user.check_password("a long password 1")


@pytest.mark.django_db
def test_createoperator_refuses_a_duplicate(alice):
    with pytest.raises(CommandError):
        run("createoperator", "--email", "alice@example.com", "--password", "a long password 1")


def test_createproject_prints_the_contract_fields(alice):
    result = run("createproject", "--owner", "alice@example.com", "--name", "Files", "--slug", "files",
                 "--resource", "https://files.example/mcp", "--resource", "https://files.example/other")
    assert set(result) == {"slug", "issuer", "registration_secret", "resources", "scopes"}
    assert result["slug"] == "files"
    assert result["issuer"] == "http://127.0.0.1:8000/p/files"
    assert result["resources"] == ["https://files.example/mcp", "https://files.example/other"]
    assert result["scopes"] == ["mcp:tools", "mcp:resources", "mcp:prompts", "offline_access"]
    project = Project.objects.get(slug="files")
    assert project.default_resource == "https://files.example/mcp"
    assert ProjectMember.objects.get(project=project).role == "owner"
    assert ProjectSecret.authenticate(project, result["registration_secret"], "register") is not None


def test_createproject_takes_scopes_and_handoff(alice):
    result = run("createproject", "--owner", "alice@example.com", "--name", "H", "--slug", "h",
                 "--scope", "read", "--scope", "write", "--login-mode", "handoff",
                 "--login-url", "https://app.example/login")
    assert result["scopes"] == ["read", "write"]
    project = Project.objects.get(slug="h")
    assert project.login_mode == "handoff" and project.login_url == "https://app.example/login"


@pytest.mark.parametrize("extra", [
    ["--slug", "bad slug"],
    ["--slug", "ok", "--resource", "not a url"],
    ["--slug", "ok", "--login-mode", "handoff"],
])
def test_createproject_refuses_bad_input_and_writes_nothing(alice, extra):
    with pytest.raises(CommandError):
        run("createproject", "--owner", "alice@example.com", "--name", "X", *extra)
    assert not Project.objects.exists()


def test_createproject_refuses_an_unknown_owner(db):
    with pytest.raises(CommandError):
        run("createproject", "--owner", "nobody@example.com", "--name", "X", "--slug", "x")


def test_createsecret_prints_a_secret_with_those_permissions(project_a):
    result = run("createsecret", "--project", "alpha", "--name", "ci", "--permissions", "register,introspect")
    row = ProjectSecret.authenticate(project_a, result["secret"], "introspect")
    assert row is not None and row.permissions == ["register", "introspect"]
    assert ProjectSecret.authenticate(project_a, result["secret"], "exchange") is None


def test_createsecret_refuses_unknown_permissions(project_a):
    with pytest.raises(CommandError):
        run("createsecret", "--project", "alpha", "--name", "x", "--permissions", "register,root")
    assert ProjectSecret.objects.filter(project=project_a).count() == 1


def test_bootstrapdemo_is_idempotent(db, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    first = run("bootstrapdemo")
    second = run("bootstrapdemo")
    assert first == second
    assert Project.objects.filter(slug="demo").count() == 1
    project = Project.objects.get(slug="demo")
    assert ProjectSecret.authenticate(project, first["registration_secret"], "register") is not None
    assert User.objects.get(username="demo@example.com").check_password(first["password"])
