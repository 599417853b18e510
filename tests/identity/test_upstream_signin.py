"""Signing in through an upstream OpenID provider (docs/identity.md), against the local stand-in:
the round trip, which end user it is, and every way it fails coming back to our sign-in page."""

from urllib.parse import parse_qs, urlsplit

import pytest

from identity.models import UpstreamIdentity
from oauth.models import AuthorizationRequest
from projects.models import AuditEvent, User
from tests.conftest import PASSWORD
from tests.identity.conftest import begin, come_back, make_provider

pytestmark = pytest.mark.django_db


def upstream_query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_it_provisions_a_new_person_and_goes_on_to_consent(client, project_a, public_client_a, provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    response = come_back(client, project_a, standin.approve(upstream, subject="u-1", email="New@Example.com"))
    assert response.status_code == 302 and response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    identity = UpstreamIdentity.objects.get(provider=provider_a, subject="u-1")
    user = identity.user
    assert (user.project, user.email, user.name) == (project_a, "new@example.com", "Eve")
    assert user.email_verified_at is not None and identity.email_verified is True
    assert AuthorizationRequest.objects.get(pk=pending.pk).user == user
    assert AuditEvent.objects.filter(kind="identity.linked", project=project_a).count() == 1
    assert client.get(response["Location"]).status_code == 200  # the consent page, as usual


def test_the_upstream_leg_uses_pkce_s256_state_and_nonce(client, project_a, public_client_a, provider_a):
    _, upstream = begin(client, project_a, public_client_a, provider_a)
    query = upstream_query(upstream)
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43
    assert query["redirect_uri"] == f"{project_a.issuer}/oauth/upstream/callback"
    assert set(query["scope"].split()) == {"openid", "email", "profile"}


def test_our_clients_prompt_and_max_age_are_not_forwarded(client, project_a, public_client_a, provider_a):
    _, upstream = begin(client, project_a, public_client_a, provider_a, prompt="login", max_age="0")
    assert "prompt" not in upstream_query(upstream) and "max_age" not in upstream_query(upstream)


def test_a_returning_identity_is_found_by_subject_not_email(client, project_a, public_client_a, provider_a, standin):
    _, upstream = begin(client, project_a, public_client_a, provider_a)
    come_back(client, project_a, standin.approve(upstream, subject="u-1", email="first@example.com"))
    _, upstream = begin(client, project_a, public_client_a, provider_a, prompt="login")
    come_back(client, project_a, standin.approve(upstream, subject="u-1", email="renamed@example.com"))
    assert User.objects.filter(project=project_a).count() == 1
    assert UpstreamIdentity.objects.get(subject="u-1").email == "renamed@example.com"


def test_it_links_an_existing_account_when_both_emails_are_verified(client, project_a, public_client_a, provider_a,
                                                                     standin, end_user_a):
    end_user_a.email_verified_at = end_user_a.date_joined
    end_user_a.save()
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    come_back(client, project_a, standin.approve(upstream, email="eve@example.com", email_verified=True))
    assert UpstreamIdentity.objects.get(provider=provider_a).user == end_user_a
    assert AuthorizationRequest.objects.get(pk=pending.pk).user == end_user_a


def test_it_never_links_an_unverified_upstream_email_to_an_existing_account(client, project_a, public_client_a,
                                                                             provider_a, standin, end_user_a):
    end_user_a.email_verified_at = end_user_a.date_joined
    end_user_a.save()
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    response = come_back(client, project_a, standin.approve(upstream, email="eve@example.com", email_verified=False))
    assert response["Location"] == f"/p/alpha/oauth/signin?request={pending.pk}&upstream=email_taken&via={provider_a.pk}"
    assert not UpstreamIdentity.objects.exists() and User.objects.filter(project=project_a).count() == 1
    assert AuthorizationRequest.objects.get(pk=pending.pk).user is None
    page = client.get(response["Location"]).content.decode()
    assert "An account with your Acme SSO email address already exists here" in page


def test_it_does_not_link_to_an_account_whose_own_email_is_unverified(client, project_a, public_client_a, provider_a,
                                                                      standin, end_user_a):
    _, upstream = begin(client, project_a, public_client_a, provider_a)
    response = come_back(client, project_a, standin.approve(upstream, email="eve@example.com", email_verified=True))
    assert "upstream=email_taken" in response["Location"] and not UpstreamIdentity.objects.exists()


def test_a_provider_that_may_not_create_accounts_turns_a_stranger_away(client, project_a, public_client_a, standin):
    provider = make_provider(project_a, standin, create_accounts=False)
    _, upstream = begin(client, project_a, public_client_a, provider)
    response = come_back(client, project_a, standin.approve(upstream, email="stranger@example.com"))
    assert "upstream=no_account" in response["Location"]
    assert not User.objects.filter(project=project_a).exists()


def test_a_cancelled_sign_in_returns_to_our_sign_in_page_with_the_request_kept(client, project_a, public_client_a,
                                                                               provider_a, standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    response = come_back(client, project_a, standin.refuse(upstream))
    assert response["Location"] == f"/p/alpha/oauth/signin?request={pending.pk}&upstream=cancelled&via={provider_a.pk}"
    page = client.get(response["Location"])
    assert page.status_code == 200 and "You cancelled signing in with Acme SSO." in page.content.decode()
    assert AuthorizationRequest.objects.live(project_a).filter(pk=pending.pk, user=None).exists()


def test_an_unreachable_upstream_comes_back_with_a_message_not_a_500(client, project_a, public_client_a, provider_a,
                                                                     standin):
    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    answer = standin.approve(upstream)
    standin.stop()
    response = come_back(client, project_a, answer)
    assert response.status_code == 302 and "upstream=failed" in response["Location"]
    assert "did not work" in client.get(response["Location"]).content.decode()


def test_a_failing_discovery_when_starting_comes_back_with_a_message(client, project_a, public_client_a, standin):
    provider = make_provider(project_a, standin, issuer=standin.issuer + "/nowhere")
    response = client.get(f"/p/alpha/oauth/authorize?{urlsplit(_authorize(project_a, public_client_a)).query}")
    pending_id = response["Location"].split("request=")[1]
    start = client.get(f"/p/alpha/oauth/upstream/start?request={pending_id}&provider={provider.pk}")
    assert start.status_code == 302 and "upstream=failed" in start["Location"]


def _authorize(project, app):
    from tests.authz import authorize_path
    return authorize_path(project, app)


def test_the_sign_in_page_lists_only_enabled_providers(client, project_a, public_client_a, provider_a, standin):
    make_provider(project_a, standin, name="Old SSO", enabled=False)
    response = client.get(_authorize(project_a, public_client_a))
    page = client.get(response["Location"]).content.decode()
    assert "Continue with Acme SSO" in page and "Old SSO" not in page
    assert page.index("Continue with Acme SSO") < page.index('name="password"')


def test_a_project_can_turn_the_email_form_off(client, project_a, public_client_a, provider_a, end_user_a):
    project_a.email_signin_enabled = False
    project_a.save()
    signin = client.get(_authorize(project_a, public_client_a))["Location"]
    page = client.get(signin).content.decode()
    assert "Continue with Acme SSO" in page and 'name="password"' not in page
    refused = client.post(signin, {"email": "eve@example.com", "password": PASSWORD})
    assert refused.status_code == 400 and AuthorizationRequest.objects.get().user is None


def test_the_callback_goes_on_in_a_webview_that_lost_its_cookies(client, project_a, public_client_a, provider_a,
                                                                 standin):
    from django.test import Client

    pending, upstream = begin(client, project_a, public_client_a, provider_a)
    webview = Client()  # the same person, back without the session cookie
    response = come_back(webview, project_a, standin.approve(upstream))
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    assert webview.get(response["Location"]).status_code == 200


# -- domain routing --------------------------------------------------------------------------------------

def test_an_email_of_a_providers_domain_goes_to_that_provider(client, project_a, public_client_a, standin):
    provider = make_provider(project_a, standin, domains=["acme.example"])
    signin = client.get(_authorize(project_a, public_client_a))["Location"]
    pending_id = signin.split("request=")[1]
    response = client.post(signin, {"email": "Ada@ACME.example", "password": ""})
    assert response.status_code == 302
    assert response["Location"] == f"/p/alpha/oauth/upstream/start?request={pending_id}&provider={provider.pk}"
    assert client.get(response["Location"])["Location"].startswith(standin.base)


def test_other_emails_still_sign_in_with_their_password(client, project_a, public_client_a, standin, end_user_a):
    make_provider(project_a, standin, domains=["acme.example"])
    signin = client.get(_authorize(project_a, public_client_a))["Location"]
    response = client.post(signin, {"email": "eve@example.com", "password": PASSWORD})
    assert response.status_code == 302 and "/oauth/consent?request=" in response["Location"]


def test_with_the_email_form_off_a_work_email_still_finds_its_provider(client, project_a, public_client_a, standin):
    project_a.email_signin_enabled = False
    project_a.save()
    provider = make_provider(project_a, standin, domains=["acme.example"])
    signin = client.get(_authorize(project_a, public_client_a))["Location"]
    page = client.get(signin).content.decode()
    assert "Work email" in page and 'name="password"' not in page
    response = client.post(signin, {"email": "ada@acme.example"})
    assert response["Location"].endswith(f"&provider={provider.pk}")
