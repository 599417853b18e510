"""`createidentityprovider` (API.md "Operator command line") and identity.manage's checks, audited,
the client secret encrypted at rest."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from identity.models import IdentityProvider
from projects.models import AuditEvent

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = io.StringIO()
    call_command("createidentityprovider", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_adds_a_provider_and_prints_the_id_and_callback_url(project_a):
    made = run("--project", "alpha", "--kind", "oidc", "--name", "Acme SSO", "--client-id", "cid",
               "--client-secret", "s3cret-value", "--issuer", "https://sso.acme.example/", "--domain", "Acme.Example",
               "--domain", "@corp.acme.example")
    assert set(made) == {"id", "callback_url"}
    assert made["callback_url"] == f"{project_a.issuer}/oauth/upstream/callback"
    row = IdentityProvider.objects.get(pk=made["id"])
    assert (row.project, row.kind, row.name, row.client_id, row.issuer) == (project_a, "oidc", "Acme SSO", "cid",
                                                                          "https://sso.acme.example")
    assert row.domains == ["acme.example", "corp.acme.example"] and row.create_accounts and row.enabled
    assert "s3cret-value" not in row.client_secret_encrypted and row.client_secret == "s3cret-value"
    event = AuditEvent.objects.get(kind="identity.provider_added")
    assert event.project == project_a and event.actor == "cli" and "s3cret-value" not in json.dumps(event.detail)


@pytest.mark.parametrize("kind, issuer", [("github", ""), ("google", ""), ("microsoft", "common"),
                                          ("microsoft", "9188040d-6c67-4c5b-b112-36a304b66dad")])
def test_it_takes_every_kind(project_a, kind, issuer):
    made = run("--project", "alpha", "--kind", kind, "--name", kind, "--client-id", "c", "--client-secret", "s",
               *(["--issuer", issuer] if issuer else []))
    assert IdentityProvider.objects.get(pk=made["id"]).kind == kind


def test_microsoft_defaults_to_the_common_tenant(project_a):
    made = run("--project", "alpha", "--kind", "microsoft", "--name", "Microsoft", "--client-id", "c",
               "--client-secret", "s")
    assert IdentityProvider.objects.get(pk=made["id"]).issuer == "common"


@pytest.mark.parametrize("args, says", [
    (["--kind", "oidc"], "issuer: An OpenID Connect provider needs its issuer"),
    (["--kind", "oidc", "--issuer", "http://sso.acme.example"], "issuer: An OpenID Connect provider needs its issuer"),
    (["--kind", "github", "--issuer", "https://github.com"], "issuer: A GitHub provider takes no issuer"),
    (["--kind", "microsoft", "--issuer", "a/b"], "issuer: For Microsoft, give the tenant"),
    (["--kind", "github", "--domain", "not a domain"], "domains: not a domain is not an email domain"),
    (["--kind", "github", "--scope", 'a"b'], "scopes:"),
])
def test_it_refuses_what_cannot_work_and_says_why(project_a, args, says):
    with pytest.raises(CommandError) as refused:
        run("--project", "alpha", "--name", "X", "--client-id", "c", "--client-secret", "s", *args)
    assert says in str(refused.value)
    assert not IdentityProvider.objects.exists()


def test_a_domain_belongs_to_one_provider_of_a_project(project_a, project_b):
    run("--project", "alpha", "--kind", "github", "--name", "GitHub", "--client-id", "c", "--client-secret", "s",
        "--domain", "acme.example")
    with pytest.raises(CommandError) as refused:
        run("--project", "alpha", "--kind", "google", "--name", "Google", "--client-id", "c", "--client-secret", "s",
            "--domain", "acme.example")
    assert "acme.example already belongs to GitHub" in str(refused.value)
    run("--project", "bravo", "--kind", "google", "--name", "Google", "--client-id", "c", "--client-secret", "s",
        "--domain", "acme.example")  # another project is another tenant


def test_an_unknown_project_is_refused(db):
    with pytest.raises(CommandError):
        run("--project", "nope", "--kind", "github", "--name", "G", "--client-id", "c", "--client-secret", "s")
