"""GET {issuer}/oauth/authorize (API.md "Authorization"; RFC 6749 §4.1, RFC 7636, RFC 8707, RFC 9207)."""

import pytest
from django.utils import timezone

from oauth.models import Application, AuthorizationRequest, Consent, Grant
from projects.models import Project
from tests.authz import (
    CHALLENGE,
    CIMD_CLIENT_ID,
    LOOPBACK_REDIRECT,
    authorize_path,
    cimd_client,
    first_party_client,
    query_of,
    sign_in_as,
    without_query,
)

pytestmark = pytest.mark.django_db

SCOPES = ["mcp:tools", "mcp:resources", "mcp:prompts", "offline_access"]


@pytest.fixture
def consented(end_user_a, public_client_a):
    """eve has allowed the public client every scope before: no consent page in the way."""
    return Consent.remember(end_user_a, public_client_a, SCOPES)


@pytest.fixture
def signed_in(client, end_user_a):
    sign_in_as(client, end_user_a)
    return client


def error_redirect(response, project, error: str, state: str | None = "st-123") -> dict:
    """Assert a 302 to the loopback redirect URI carrying `error`, `state` and `iss`; the params."""
    assert response.status_code == 302
    assert without_query(response["Location"]) == LOOPBACK_REDIRECT
    params = query_of(response["Location"])
    assert params["error"] == error
    assert params["iss"] == project.issuer
    assert params.get("state") == state
    assert "code" not in params
    return params


# --- Success ---------------------------------------------------------------------------------------


def test_it_redirects_with_code_state_and_iss(signed_in, project_a, public_client_a, end_user_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a))
    assert response.status_code == 302
    assert without_query(response["Location"]) == LOOPBACK_REDIRECT
    params = query_of(response["Location"])
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "st-123"
    assert params["iss"] == "http://127.0.0.1:8000/p/alpha"
    grant = Grant.objects.get(application=public_client_a)
    assert grant.user == end_user_a
    assert grant.redirect_uri == LOOPBACK_REDIRECT
    assert grant.code_challenge == CHALLENGE and grant.code_challenge_method == "S256"
    assert grant.scope.split() == SCOPES
    assert grant.resource == ["https://mcp.alpha.example/mcp"]
    assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]


def test_it_leaves_state_out_when_the_client_sent_none(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, state=None))
    params = query_of(response["Location"])
    assert set(params) == {"code", "iss"}


def test_it_allows_any_port_on_a_loopback_redirect_uri(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, redirect_uri="http://127.0.0.1:61001/callback"))
    assert response.status_code == 302
    assert response["Location"].startswith("http://127.0.0.1:61001/callback?")
    assert Grant.objects.get(application=public_client_a).redirect_uri == "http://127.0.0.1:61001/callback"


def test_it_uses_the_only_registered_redirect_uri_when_none_is_sent(client, project_a, end_user_a):
    app = first_party_client(project_a)
    app.redirect_uris = "https://only.example/cb"
    app.save()
    sign_in_as(client, end_user_a)
    response = client.get(authorize_path(project_a, app, redirect_uri=None))
    assert response["Location"].startswith("https://only.example/cb?code=")


# --- Client and redirect URI: an error page, never a redirect ---------------------------------------


def assert_error_page(response) -> None:
    assert response.status_code == 400
    assert "Location" not in response
    assert response["Content-Type"].startswith("text/html")
    assert AuthorizationRequest.objects.count() == 0 and Grant.objects.count() == 0


def test_it_shows_an_error_page_for_an_unknown_client(signed_in, project_a, public_client_a):
    public_client_a.client_id = "nope"
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_a)))


def test_it_shows_an_error_page_for_a_missing_client_id(signed_in, project_a, public_client_a):
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_a, client_id=None)))


def test_it_shows_an_error_page_for_another_projects_client(signed_in, project_a, public_client_b):
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_b)))


def test_it_shows_an_error_page_for_a_disabled_client(signed_in, project_a, public_client_a):
    public_client_a.disabled_at = timezone.now()
    public_client_a.save()
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_a)))


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/callback",
    "https://client.example/callback/extra",
    "https://client.example/callback?x=1",
    "https://client.example:8443/callback",
    "http://client.example/callback",
    "http://localhost.evil.example/callback",
])
def test_it_shows_an_error_page_for_an_unregistered_redirect_uri(signed_in, project_a, public_client_a, redirect_uri):
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_a, redirect_uri=redirect_uri)))


def test_it_shows_an_error_page_when_the_redirect_uri_is_ambiguous(signed_in, project_a, public_client_a):
    # Two are registered, none sent: the server cannot know where to go.
    assert_error_page(signed_in.get(authorize_path(project_a, public_client_a, redirect_uri=None)))


def test_it_shows_an_error_page_for_a_repeated_client_id(signed_in, project_a, public_client_a):
    path = authorize_path(project_a, public_client_a) + f"&client_id={public_client_a.client_id}"
    assert_error_page(signed_in.get(path))


def test_it_refuses_other_methods(client, project_a, public_client_a):
    assert client.post(authorize_path(project_a, public_client_a)).status_code == 405


# --- Errors after the client is known: redirected with error, state, iss ---------------------------


def test_it_refuses_a_response_type_other_than_code(signed_in, project_a, public_client_a):
    response = signed_in.get(authorize_path(project_a, public_client_a, response_type="token"))
    error_redirect(response, project_a, "unsupported_response_type")
    assert Grant.objects.count() == 0


def test_it_requires_a_response_type(signed_in, project_a, public_client_a):
    response = signed_in.get(authorize_path(project_a, public_client_a, response_type=None))
    error_redirect(response, project_a, "invalid_request")


def test_it_refuses_a_client_without_the_code_grant(signed_in, project_a, public_client_a):
    public_client_a.metadata = {"grant_types": ["client_credentials"]}
    public_client_a.authorization_grant_type = Application.GRANT_CLIENT_CREDENTIALS
    public_client_a.save()
    response = signed_in.get(authorize_path(project_a, public_client_a))
    error_redirect(response, project_a, "unauthorized_client")


def test_it_requires_pkce(signed_in, project_a, public_client_a):
    response = signed_in.get(authorize_path(project_a, public_client_a, code_challenge=None,
                                            code_challenge_method=None))
    error_redirect(response, project_a, "invalid_request")
    assert Grant.objects.count() == 0


def test_it_refuses_the_plain_pkce_method(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, code_challenge_method="plain"))
    error_redirect(response, project_a, "invalid_request")
    assert Grant.objects.count() == 0


def test_it_refuses_a_challenge_without_a_method(signed_in, project_a, public_client_a, consented):
    # RFC 7636 §4.3: a missing method means plain.
    response = signed_in.get(authorize_path(project_a, public_client_a, code_challenge_method=None))
    error_redirect(response, project_a, "invalid_request")


def test_it_refuses_a_malformed_challenge(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, code_challenge="short"))
    error_redirect(response, project_a, "invalid_request")


def test_it_refuses_a_repeated_parameter(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a) + "&scope=mcp:tools&scope=mcp:prompts")
    error_redirect(response, project_a, "invalid_request")


def test_it_carries_state_and_iss_on_errors_under_a_custom_domain(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(custom_domain="auth.alpha.example")
    path = authorize_path(project_a, public_client_a, response_type="token").replace("/p/alpha", "")
    response = client.get(path, HTTP_HOST="auth.alpha.example")
    assert query_of(response["Location"])["iss"] == "https://auth.alpha.example"
    assert query_of(response["Location"])["state"] == "st-123"


# --- RFC 8707 resource -----------------------------------------------------------------------------


def test_it_refuses_a_resource_the_project_does_not_serve(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, resource="https://mcp.bravo.example/mcp"))
    error_redirect(response, project_a, "invalid_target")
    assert Grant.objects.count() == 0


def test_it_refuses_two_resources(signed_in, project_a, public_client_a, consented):
    path = authorize_path(project_a, public_client_a, resource="https://mcp.alpha.example/mcp")
    response = signed_in.get(path + "&resource=https%3A%2F%2Ffiles.alpha.example%2Fmcp")
    error_redirect(response, project_a, "invalid_target")


def test_it_stores_the_requested_resource_on_the_grant(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, resource="https://files.alpha.example/mcp"))
    assert "code" in query_of(response["Location"])
    assert Grant.objects.get(application=public_client_a).resource == ["https://files.alpha.example/mcp"]


def test_it_defaults_the_resource_to_the_projects_first(signed_in, project_a, public_client_a, consented):
    signed_in.get(authorize_path(project_a, public_client_a))
    assert Grant.objects.get(application=public_client_a).resource == [project_a.default_resource]


# --- Scope -----------------------------------------------------------------------------------------


def test_it_refuses_an_unknown_scope(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, scope="mcp:tools admin"))
    error_redirect(response, project_a, "invalid_scope")
    assert Grant.objects.count() == 0


def test_it_narrows_to_the_scopes_the_client_registered(signed_in, project_a, public_client_a, consented):
    public_client_a.metadata = {**public_client_a.metadata, "scope": "mcp:tools"}
    public_client_a.save()
    response = signed_in.get(authorize_path(project_a, public_client_a, scope="mcp:tools mcp:prompts"))
    assert "code" in query_of(response["Location"])
    assert Grant.objects.get(application=public_client_a).scope == "mcp:tools"


def test_it_refuses_when_nothing_the_client_may_have_is_left(signed_in, project_a, public_client_a, consented):
    public_client_a.metadata = {**public_client_a.metadata, "scope": "mcp:tools"}
    public_client_a.save()
    response = signed_in.get(authorize_path(project_a, public_client_a, scope="mcp:prompts"))
    error_redirect(response, project_a, "invalid_scope")


def test_it_defaults_the_scope_to_the_clients(signed_in, project_a, public_client_a, consented):
    public_client_a.metadata = {**public_client_a.metadata, "scope": "mcp:tools mcp:resources"}
    public_client_a.save()
    signed_in.get(authorize_path(project_a, public_client_a, scope=None))
    assert Grant.objects.get(application=public_client_a).scope == "mcp:tools mcp:resources"


def test_it_grants_a_requested_subset(signed_in, project_a, public_client_a, consented):
    signed_in.get(authorize_path(project_a, public_client_a, scope="mcp:prompts mcp:tools"))
    assert Grant.objects.get(application=public_client_a).scope == "mcp:prompts mcp:tools"


# --- Who is the end user: sign-in, handoff, consent, prompt -----------------------------------------


def test_it_sends_a_signed_out_browser_to_the_sign_in_page(client, project_a, public_client_a):
    response = client.get(authorize_path(project_a, public_client_a))
    pending = AuthorizationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/p/alpha/oauth/signin?request={pending.pk}"
    assert pending.project == project_a and pending.client == public_client_a
    assert pending.status == "pending" and pending.user is None
    assert pending.params["state"] == "st-123" and pending.params["code_challenge"] == CHALLENGE
    assert pending.params["resource"] == "https://mcp.alpha.example/mcp"


def test_it_does_not_know_an_end_user_of_another_project(client, project_a, public_client_a, end_user_b):
    sign_in_as(client, end_user_b)
    response = client.get(authorize_path(project_a, public_client_a))
    assert response["Location"].startswith("/p/alpha/oauth/signin?request=")


def test_it_sends_the_browser_to_the_operators_login_page_in_handoff_mode(client, project_a, public_client_a):
    Project.objects.filter(pk=project_a.pk).update(login_mode="handoff", login_url="https://login.alpha.example/sso?x=1")
    response = client.get(authorize_path(project_a, public_client_a))
    pending = AuthorizationRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"https://login.alpha.example/sso?x=1&authorization_request={pending.pk}"


def test_it_asks_for_consent_the_first_time(signed_in, project_a, public_client_a):
    response = signed_in.get(authorize_path(project_a, public_client_a))
    pending = AuthorizationRequest.objects.get()
    assert response["Location"] == f"/p/alpha/oauth/consent?request={pending.pk}"
    assert Grant.objects.count() == 0


def test_it_asks_again_for_scopes_not_yet_allowed(signed_in, project_a, public_client_a, end_user_a):
    Consent.remember(end_user_a, public_client_a, ["mcp:tools"])
    response = signed_in.get(authorize_path(project_a, public_client_a, scope="mcp:tools mcp:prompts"))
    assert response["Location"].startswith("/p/alpha/oauth/consent?request=")


def test_it_asks_again_with_prompt_consent(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="consent"))
    assert response["Location"].startswith("/p/alpha/oauth/consent?request=")
    assert Grant.objects.count() == 0


def test_it_skips_consent_for_first_party_clients(client, project_a, end_user_a):
    app = first_party_client(project_a)
    sign_in_as(client, end_user_a)
    response = client.get(authorize_path(project_a, app, prompt="consent"))
    assert "code" in query_of(response["Location"])
    assert Consent.objects.count() == 0


def test_it_answers_prompt_none_without_a_session_with_login_required(client, project_a, public_client_a):
    response = client.get(authorize_path(project_a, public_client_a, prompt="none"))
    error_redirect(response, project_a, "login_required")
    assert AuthorizationRequest.objects.count() == 0


def test_it_answers_prompt_none_without_consent_with_consent_required(signed_in, project_a, public_client_a):
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="none"))
    error_redirect(response, project_a, "consent_required")
    assert AuthorizationRequest.objects.count() == 0


def test_it_answers_prompt_none_with_a_code_when_nothing_is_needed(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="none"))
    assert set(query_of(response["Location"])) == {"code", "state", "iss"}


def test_it_refuses_prompt_none_with_other_values(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="none consent"))
    error_redirect(response, project_a, "invalid_request")


def test_it_answers_prompt_none_in_handoff_mode_with_login_required(signed_in, project_a, public_client_a, consented):
    Project.objects.filter(pk=project_a.pk).update(login_mode="handoff", login_url="https://login.alpha.example/")
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="none"))
    error_redirect(response, project_a, "login_required")


def test_it_signs_in_again_with_prompt_login(signed_in, project_a, public_client_a, consented):
    response = signed_in.get(authorize_path(project_a, public_client_a, prompt="login"))
    assert response["Location"].startswith("/p/alpha/oauth/signin?request=")


def test_it_serves_cimd_clients_like_registered_ones(signed_in, project_a, end_user_a):
    app = cimd_client(project_a)
    Consent.remember(end_user_a, app, SCOPES)
    response = signed_in.get(authorize_path(project_a, app))
    assert app.client_id == CIMD_CLIENT_ID
    assert set(query_of(response["Location"])) == {"code", "state", "iss"}
    assert Grant.objects.get(application=app).user == end_user_a


def test_the_code_redeems_at_the_token_endpoint_for_the_resource(signed_in, project_a, public_client_a, consented):
    from tests.authz import VERIFIER

    response = signed_in.get(authorize_path(project_a, public_client_a, resource="https://files.alpha.example/mcp",
                                            scope="mcp:tools"))
    code = query_of(response["Location"])["code"]
    token = signed_in.post(f"/p/{project_a.slug}/oauth/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": LOOPBACK_REDIRECT,
        "client_id": public_client_a.client_id, "code_verifier": VERIFIER,
    })
    assert token.status_code == 200, token.content
    assert token.json()["scope"] == "mcp:tools"
    introspected = signed_in.post(f"/p/{project_a.slug}/oauth/introspect", {"token": token.json()["access_token"]},
                                  HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")
    assert introspected.json()["aud"] in ("https://files.alpha.example/mcp", ["https://files.alpha.example/mcp"])


@pytest.mark.parametrize("param", ["client_id", "state", "scope", "code_challenge"])
def test_it_answers_a_nul_byte_with_the_error_page(client, project_a, public_client_a, param):
    response = client.get(authorize_path(project_a, public_client_a, **{param: "x\x00y"}))
    assert_error_page(response)
