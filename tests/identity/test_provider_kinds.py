"""GitHub, Google and Microsoft Entra ID adapters, against the local stand-in speaking their
documented endpoints and answers (the real ones cannot be reached from here; their addresses are in
settings.IDENTITY_UPSTREAMS, pointed at the stand-in by these tests)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from identity.models import UpstreamIdentity
from tests.identity.conftest import begin, come_back, make_provider
from tests.identity.standin import TENANT_ID, StandIn

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream_of(tmp_path, settings):
    started = []

    def start(kind: str) -> StandIn:
        server = StandIn(tmp_path, kind=kind)
        settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
        settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
        settings.IDENTITY_UPSTREAMS = server.settings()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_github_reads_the_user_and_the_primary_verified_email(client, project_a, public_client_a, upstream_of):
    github = upstream_of("github")
    provider = make_provider(project_a, github, kind="github", name="GitHub", issuer="")
    pending, upstream = begin(client, project_a, public_client_a, provider)
    assert upstream.startswith(f"{github.base}/login/oauth/authorize?")
    assert set(query_of(upstream)["scope"].split()) == {"read:user", "user:email"}
    response = come_back(client, project_a, github.approve(upstream, subject="octocat", email="octo@example.com"))
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    identity = UpstreamIdentity.objects.get(provider=provider)
    assert identity.subject.isdigit()  # GitHub's numeric id: logins can be renamed
    assert identity.user.email == "octo@example.com" and identity.user.email_verified_at is not None
    assert "/login/oauth/access_token" in github.hits and "/api/user/emails" in github.hits


def test_github_an_unverified_primary_email_is_kept_unverified(client, project_a, public_client_a, upstream_of):
    github = upstream_of("github")
    provider = make_provider(project_a, github, kind="github", name="GitHub", issuer="")
    _, upstream = begin(client, project_a, public_client_a, provider)
    come_back(client, project_a, github.approve(upstream, email="octo@example.com", email_verified=False))
    user = UpstreamIdentity.objects.get(provider=provider).user
    assert user.email == "octo@example.com" and user.email_verified_at is None


def test_google_is_openid_connect_at_its_fixed_issuer(client, project_a, public_client_a, upstream_of):
    google = upstream_of("google")
    provider = make_provider(project_a, google, kind="google", name="Google", issuer="")
    pending, upstream = begin(client, project_a, public_client_a, provider)
    assert upstream.startswith(f"{google.base}/authorize?") and "nonce" in query_of(upstream)
    response = come_back(client, project_a, google.approve(upstream, subject="1234567890", email="g@example.com"))
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    assert UpstreamIdentity.objects.get(provider=provider).subject == "1234567890"


def test_google_refuses_an_id_token_for_another_client(client, project_a, public_client_a, upstream_of):
    google = upstream_of("google")
    provider = make_provider(project_a, google, kind="google", name="Google", issuer="")
    _, upstream = begin(client, project_a, public_client_a, provider)
    google.tamper = {"aud": "another-google-client"}
    assert "upstream=failed" in come_back(client, project_a, google.approve(upstream))["Location"]


def test_microsoft_common_accepts_the_tokens_own_tenant_in_the_issuer_template(client, project_a, public_client_a,
                                                                               upstream_of):
    microsoft = upstream_of("microsoft")
    provider = make_provider(project_a, microsoft, kind="microsoft", name="Microsoft", issuer="common")
    pending, upstream = begin(client, project_a, public_client_a, provider)
    assert upstream.startswith(f"{microsoft.base}/common/authorize?")
    response = come_back(client, project_a, microsoft.approve(upstream, subject="ms-oid-1", email="m@contoso.example"))
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"


def test_microsoft_common_refuses_an_issuer_that_is_not_the_tokens_tenant(client, project_a, public_client_a,
                                                                          upstream_of):
    microsoft = upstream_of("microsoft")
    provider = make_provider(project_a, microsoft, kind="microsoft", name="Microsoft", issuer="common")
    _, upstream = begin(client, project_a, public_client_a, provider)
    microsoft.tamper = {"tid": "00000000-0000-0000-0000-000000000000"}  # iss still names TENANT_ID
    assert "upstream=failed" in come_back(client, project_a, microsoft.approve(upstream))["Location"]
    assert not UpstreamIdentity.objects.exists()


def test_microsoft_one_tenant(client, project_a, public_client_a, upstream_of):
    microsoft = upstream_of("microsoft")
    provider = make_provider(project_a, microsoft, kind="microsoft", name="Contoso", issuer=TENANT_ID)
    _, upstream = begin(client, project_a, public_client_a, provider)
    assert upstream.startswith(f"{microsoft.base}/{TENANT_ID}/authorize?")
    response = come_back(client, project_a, microsoft.approve(upstream))
    assert response["Location"].startswith("/p/alpha/oauth/consent")
