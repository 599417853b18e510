"""`python manage.py createclient` as API.md says: pre-registered clients, `--json` → {client_id, client_secret?}."""

import json
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command

from oauth.models import Application
from projects.models import AuditEvent


def run(*args) -> dict:
    out = StringIO()
    call_command("createclient", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_creates_a_public_client(project_a):
    result = run("--project", "alpha", "--name", "Inspector", "--redirect-uri", "http://127.0.0.1/cb",
                 "--redirect-uri", "https://app.example/cb")
    assert set(result) == {"client_id"}
    client = Application.objects.get(project=project_a, client_id=result["client_id"])
    assert client.registration_path == "dashboard"
    assert client.client_type == "public" and not client.first_party
    assert client.name == "Inspector"
    assert client.redirect_uris == "http://127.0.0.1/cb https://app.example/cb"
    assert client.metadata["grant_types"] == ["authorization_code", "refresh_token"]
    assert AuditEvent.objects.get(project=project_a, kind="client.registered").detail["path"] == "dashboard"


def test_it_creates_a_confidential_first_party_client_and_prints_its_secret_once(project_a):
    result = run("--project", "alpha", "--name", "Backend", "--redirect-uri", "https://backend.example/cb",
                 "--confidential", "--first-party")
    assert set(result) == {"client_id", "client_secret"}
    client = Application.objects.get(project=project_a, client_id=result["client_id"])
    assert client.client_type == "confidential"
    assert client.first_party and client.skip_authorization
    assert client.client_secret != result["client_secret"]
    assert client.client_secret.startswith("mcpauth_hmac$")
    assert check_password(result["client_secret"], client.client_secret)


def test_it_creates_a_client_credentials_client(project_a):
    result = run("--project", "alpha", "--name", "Cron", "--grant", "client_credentials", "--confidential")
    client = Application.objects.get(project=project_a, client_id=result["client_id"])
    assert client.grant_types == ["client_credentials"]
    assert client.allows_grant_type(Application.GRANT_CLIENT_CREDENTIALS)
    assert "client_secret" in result


def test_client_credentials_implies_a_confidential_client(project_a):
    result = run("--project", "alpha", "--name", "Cron", "--grant", "client_credentials",
                 "--redirect-uri", "https://backend.example/cb")
    client = Application.objects.get(project=project_a, client_id=result["client_id"])
    assert client.client_type == "confidential"
    assert client.grant_types == ["authorization_code", "refresh_token", "client_credentials"]


@pytest.mark.parametrize("args", [
    ["--project", "nope", "--name", "X", "--redirect-uri", "https://a.example/cb"],
    ["--project", "alpha", "--name", "X", "--redirect-uri", "http://evil.example/cb"],
    ["--project", "alpha", "--name", "X", "--redirect-uri", "https://a.example/cb#frag"],
    ["--project", "alpha", "--name", "X"],
    ["--project", "alpha", "--name", "X", "--redirect-uri", "https://a.example/cb", "--scope", "admin"],
])
def test_it_refuses_bad_input_and_writes_nothing(project_a, args):
    with pytest.raises(CommandError):
        run(*args)
    assert not Application.objects.exists()


def test_it_prints_a_human_line_without_json(project_a):
    out = StringIO()
    call_command("createclient", "--project", "alpha", "--name", "X", "--redirect-uri", "https://a.example/cb",
                 stdout=out)
    client = Application.objects.get(project=project_a)
    assert client.client_id in out.getvalue()
