"""Upstream attacks, one test each (issue 20): a forged or replayed round trip signs nobody in, and
the person lands back on our sign-in page with the pending request kept."""

import pytest
from jwcrypto import jwk

from identity.models import UpstreamIdentity
from oauth.models import AuthorizationRequest
from projects.models import User
from tests.identity.conftest import begin, come_back, make_provider

pytestmark = pytest.mark.django_db


def refused(http, project, pending, answer, code="failed"):
    response = come_back(http, project, answer)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/p/{project.slug}/oauth/signin?request={pending.pk}&upstream={code}")
    assert not UpstreamIdentity.objects.exists()
    assert not User.objects.filter(project=project).exists()
    assert AuthorizationRequest.objects.live(project).filter(pk=pending.pk, user=None).exists()


def test_a_replayed_state_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    answer = standin.approve(upstream)
    assert come_back(client, project_a, answer)["Location"].startswith("/p/alpha/oauth/consent")
    token_calls = [h for h in standin.hits if h == "/token"]
    replay = come_back(client, project_a, answer)
    assert replay["Location"] == f"/p/alpha/oauth/signin?request={pending.pk}&upstream=expired"
    assert [h for h in standin.hits if h == "/token"] == token_calls  # the code was never sent again
    assert UpstreamIdentity.objects.count() == 1


def test_a_state_that_does_not_match_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    answer = standin.approve(upstream)
    refused(client, project_a, pending, {**answer, "state": answer["state"][:-2] + "xx"}, "expired")


def test_a_missing_state_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    answer = standin.approve(upstream)
    del answer["state"]
    refused(client, project_a, pending, answer, "expired")


def test_an_id_token_without_the_nonce_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper = {"nonce": None}
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_id_token_with_another_nonce_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper = {"nonce": "a-nonce-from-another-round"}
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_id_token_from_another_issuer_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper = {"iss": "https://evil.example"}
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_id_token_for_another_audience_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper = {"aud": "another-client"}
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_expired_id_token_is_refused(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper = {"exp": 1_000_000_000}
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_id_token_signed_by_a_key_not_in_the_jwks_is_refused(client, project_a, public_client_a, provider_a,
                                                                 standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.tamper_key = jwk.JWK.generate(kty="RSA", size=2048, kid="standin-1")
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_authorization_response_from_another_issuer_is_refused(client, project_a, public_client_a, provider_a,
                                                                  standin):
    """RFC 9207 §2.4: `iss` in the response must be the upstream's issuer (mix-up attacks)."""
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    refused(client, project_a, pending, {**standin.approve(upstream), "iss": "https://evil.example"})
    assert "/token" not in standin.hits  # refused before the code is spent


def test_a_missing_iss_is_refused_when_the_upstream_says_it_sends_one(client, project_a, public_client_a, provider_a,
                                                                      standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    standin.send_iss = False
    refused(client, project_a, pending, standin.approve(upstream))


def test_an_unverified_upstream_email_never_links_to_an_existing_account(client, project_a, public_client_a,
                                                                          provider_a, standin, end_user_a):
    end_user_a.email_verified_at = end_user_a.date_joined
    end_user_a.save()
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    response = come_back(client, project_a, standin.approve(upstream, email=end_user_a.email, email_verified=False))
    assert "upstream=email_taken" in response["Location"]
    assert not UpstreamIdentity.objects.exists()
    assert AuthorizationRequest.objects.get(pk=pending.pk).user is None


def test_a_round_started_at_project_a_is_refused_at_project_b(client, project_a, project_b, public_client_a,
                                                              public_client_b, provider_a, standin):
    pending_a, upstream = begin(client, project_a, public_client_a, provider_a)
    make_provider(project_b, standin)
    response = come_back(client, project_b, standin.approve(upstream))
    assert response.status_code == 400  # no pending request of B in this browser: the expired page
    assert not UpstreamIdentity.objects.exists() and not User.objects.filter(project=project_b).exists()
    assert AuthorizationRequest.objects.get(pk=pending_a.pk).user is None


def test_a_provider_of_project_a_cannot_be_started_at_project_b(client, project_a, project_b, public_client_b,
                                                                provider_a):
    from tests.authz import authorize_path

    signin = client.get(authorize_path(project_b, public_client_b))["Location"]
    pending_id = signin.split("request=")[1]
    page = client.get(signin).content.decode()
    assert "Acme SSO" not in page
    response = client.get(f"/p/bravo/oauth/upstream/start?request={pending_id}&provider={provider_a.pk}")
    assert response.status_code == 404


def test_a_refused_code_at_the_upstream_token_endpoint_comes_back_with_a_message(client, project_a, public_client_a,
                                                                                  provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    provider_a.client_secret = "not-the-secret"  # the upstream answers invalid_client
    provider_a.save()
    refused(client, project_a, pending, standin.approve(upstream))
    assert "/token" in standin.hits


def test_a_code_from_another_round_fails_pkce_at_the_upstream(client, project_a, public_client_a, provider_a,
                                                              standin):
    """The code is bound (PKCE) to the verifier of the round it was issued for, not of this state."""
    pending, first = begin(client, project_a, public_client_a, provider_a)
    _, second = begin(client, project_a, public_client_a, provider_a)
    stolen = standin.approve(second)
    refused(client, project_a, pending, {**standin.approve(first), "code": stolen["code"]})
