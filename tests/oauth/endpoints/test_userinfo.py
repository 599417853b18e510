"""GET|POST {issuer}/oauth/userinfo (OpenID Connect Core §5.3; errors per RFC 6750 §3)."""

import pytest

from oauth.models import AccessToken
from projects.models import User
from tests.conftest import PASSWORD
from tests.dpop_support import DpopKey
from tests.oidc_support import turn_on_openid
from tests.token_support import make_code, post_form, redeem

pytestmark = pytest.mark.django_db


@pytest.fixture
def oidc_a(project_a):
    turn_on_openid(project_a)
    return project_a


@pytest.fixture
def eve(oidc_a):
    user = User.objects.create_end_user(oidc_a, "eve@example.com", PASSWORD)
    user.name = "Eve Example"
    user.save()
    return user


def access_token(client, app, user, scope: str) -> str:
    code, verifier = make_code(app, user, scope=scope)
    response = redeem(client, app, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def userinfo(client, project, token: str | None, method="get"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return getattr(client, method)(f"/p/{project.slug}/oauth/userinfo", **headers)


def test_it_answers_the_claims_the_tokens_scopes_allow(client, oidc_a, public_client_a, eve):
    bare = userinfo(client, oidc_a, access_token(client, public_client_a, eve, "openid"))
    full = userinfo(client, oidc_a, access_token(client, public_client_a, eve, "openid email profile"))

    assert bare.status_code == 200 and bare["Content-Type"] == "application/json"
    assert bare["Cache-Control"] == "no-store"
    assert bare.json() == {"sub": eve.subject}
    assert full.json() == {"sub": eve.subject, "email": "eve@example.com", "email_verified": False,
                           "name": "Eve Example"}


def test_it_takes_the_token_in_a_form_body(client, oidc_a, public_client_a, eve):
    token = access_token(client, public_client_a, eve, "openid email")
    response = post_form(client, "/p/alpha/oauth/userinfo", {"access_token": token})

    assert response.status_code == 200 and response.json() == {"sub": eve.subject, "email": "eve@example.com",
                                                                "email_verified": False}


def test_it_answers_for_a_jwt_access_token_too(client, oidc_a, public_client_a, eve):
    oidc_a.token_format = "jwt"
    oidc_a.save()
    token = access_token(client, public_client_a, eve, "openid")
    assert token.count(".") == 2
    assert userinfo(client, oidc_a, token).json() == {"sub": eve.subject}


def test_without_a_token_it_challenges_without_an_error_code(client, oidc_a):
    response = userinfo(client, oidc_a, None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="http://127.0.0.1:8000/p/alpha"'


def test_an_unknown_token_is_invalid_token(client, oidc_a):
    response = userinfo(client, oidc_a, "mcpat_" + "x" * 43)

    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_token_without_openid_is_insufficient_scope(client, oidc_a, public_client_a, eve):
    response = userinfo(client, oidc_a, access_token(client, public_client_a, eve, "mcp:tools"))

    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    assert response["WWW-Authenticate"].startswith('Bearer error="insufficient_scope", scope="openid"')


def test_a_token_of_another_project_is_invalid_token(client, oidc_a, public_client_a, eve, project_b):
    turn_on_openid(project_b)
    token = access_token(client, public_client_a, eve, "openid email")
    response = userinfo(client, project_b, token)

    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert "eve@example.com" not in response.content.decode()


def test_a_revoked_token_is_invalid_token(client, oidc_a, public_client_a, eve):
    token = access_token(client, public_client_a, eve, "openid")
    revoked = post_form(client, "/p/alpha/oauth/revoke", {"token": token, "client_id": public_client_a.client_id})
    assert revoked.status_code == 200 and not AccessToken.objects.exists()

    response = userinfo(client, oidc_a, token)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_a_token_in_the_query_is_refused(client, oidc_a, public_client_a, eve):
    token = access_token(client, public_client_a, eve, "openid")
    response = client.get(f"/p/alpha/oauth/userinfo?access_token={token}")

    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert token not in response.content.decode()


def test_a_project_without_openid_connect_has_no_userinfo(client, project_a, public_client_a, end_user_a):
    project_a.scopes = [*project_a.scopes, {"name": "openid", "description": "our own"}]
    project_a.save()
    token = access_token(client, public_client_a, end_user_a, "openid")

    assert userinfo(client, project_a, token).status_code == 404


def test_a_client_credentials_token_is_about_no_end_user(client, oidc_a):
    from tests.conftest import _confidential_client
    from tests.token_support import basic

    backend = _confidential_client(oidc_a)
    token = post_form(client, "/p/alpha/oauth/token", {"grant_type": "client_credentials", "scope": "mcp:tools"},
                      HTTP_AUTHORIZATION=basic(backend)).json()["access_token"]

    response = userinfo(client, oidc_a, token)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_a_dpop_bound_token_presented_as_bearer_is_invalid_token(client, oidc_a, public_client_a, eve):
    """RFC 9449 §7: a token bound to a DPoP key is no bearer token; userinfo takes bearer tokens only."""
    oidc_a.dpop = "allowed"
    oidc_a.save()
    code, verifier = make_code(public_client_a, eve, scope="openid email")
    proof = DpopKey().proof("POST", f"{oidc_a.issuer}/oauth/token")
    issued = post_form(client, "/p/alpha/oauth/token", {
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": public_client_a.redirect_uris.split()[0], "client_id": public_client_a.client_id,
    }, HTTP_DPOP=proof)
    assert issued.status_code == 200 and issued.json()["token_type"] == "DPoP", issued.content

    response = userinfo(client, oidc_a, issued.json()["access_token"])

    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert "DPoP-bound" in response.json()["error_description"]
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert "eve@example.com" not in response.content.decode()
