"""Shared pieces of the identity tests: a stand-in upstream and a project's provider pointing at it."""

from urllib.parse import urlencode, urlsplit

import pytest

from identity.models import IdentityProvider
from oauth.models import AuthorizationRequest
from tests.authz import authorize_path
from tests.identity.standin import StandIn


@pytest.fixture
def standin(tmp_path, settings):
    server = StandIn(tmp_path)
    settings.OUTBOUND_CA_BUNDLE = str(server.ca_path)
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True  # the stand-in is on 127.0.0.1
    settings.IDENTITY_UPSTREAMS = server.settings()
    yield server
    server.stop()


def make_provider(project, standin, **fields) -> IdentityProvider:
    provider = IdentityProvider(project=project, kind=fields.pop("kind", "oidc"), name=fields.pop("name", "Acme SSO"),
                                client_id=standin.client_id, issuer=fields.pop("issuer", standin.issuer), **fields)
    provider.client_secret = standin.client_secret
    provider.save()
    return provider


@pytest.fixture
def provider_a(project_a, standin):
    return make_provider(project_a, standin)


def begin(http, project, app, provider, **params) -> tuple[AuthorizationRequest, str]:
    """Our authorize, our sign-in page, `Continue with …`: the pending request and the upstream URL."""
    response = http.get(authorize_path(project, app, **params))
    assert response.status_code == 302 and "/oauth/signin?request=" in response["Location"]
    page = http.get(response["Location"])
    assert f"Continue with {provider.name}" in page.content.decode()
    pending = AuthorizationRequest.objects.get(pk=response["Location"].split("request=")[1])
    start = http.get(f"/p/{project.slug}/oauth/upstream/start?" + urlencode({"request": pending.pk, "provider": provider.pk}))
    assert start.status_code == 302, start.content
    return pending, start["Location"]


def come_back(http, project, answer: dict):
    return http.get(f"/p/{project.slug}/oauth/upstream/callback?" + urlencode(answer))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
