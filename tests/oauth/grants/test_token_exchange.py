"""Token exchange: RFC 8693 at the token endpoint, and the mcpauth `POST /api/oauth/token/exchange`."""

import json

import pytest

from oauth.models import AccessToken, RefreshToken
from oauth.tokens import jwt_tokens
from projects.models import AuditEvent, Project, ProjectSecret, User
from tests.conftest import _public_client
from tests.dpop_support import DpopKey
from tests.token_support import basic, introspect, make_code, post_form, redeem, token_url

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def subject(client, public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    return redeem(client, public_client_a, code, verifier).json()["access_token"]


def exchange(http, caller, token, HTTP_DPOP=None, **params):
    data = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ACCESS, **params}
    headers = {"HTTP_DPOP": HTTP_DPOP} if HTTP_DPOP else {}
    if caller.client_type == "confidential":
        headers["HTTP_AUTHORIZATION"] = basic(caller)
    else:
        data["client_id"] = caller.client_id
    return post_form(http, token_url(caller.project), data, **headers)


def describe(http, project, token):
    return introspect(http, project, token, project.registration_secret).json()


# --- RFC 8693 -------------------------------------------------------------------------------------
def test_it_exchanges_with_act_when_another_client_exchanges(client, subject, confidential_client_a, end_user_a,
                                                             project_a):
    response = exchange(client, confidential_client_a, subject, scope="mcp:tools",
                        resource="https://files.alpha.example/mcp")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    assert body["scope"] == "mcp:tools" and "refresh_token" not in body
    answer = describe(client, project_a, body["access_token"])
    assert answer["sub"] == end_user_a.subject
    assert answer["client_id"] == confidential_client_a.client_id
    assert answer["aud"] == "https://files.alpha.example/mcp"
    assert answer["act"] == {"sub": confidential_client_a.client_id}
    assert AccessToken.objects.get(claims__act__isnull=False).token == ""


def test_it_keeps_the_subjects_audience_and_scope_by_default_without_act_for_the_same_client(
        client, subject, public_client_a, project_a):
    response = exchange(client, public_client_a, subject)

    assert response.status_code == 200
    answer = describe(client, project_a, response.json()["access_token"])
    assert answer["scope"] == "mcp:tools offline_access"
    assert answer["aud"] == "https://mcp.alpha.example/mcp"
    assert "act" not in answer


def test_it_never_outlives_the_subject_token(client, subject, confidential_client_a):
    from datetime import timedelta

    from django.utils import timezone

    AccessToken.objects.update(expires=timezone.now() + timedelta(seconds=100))

    response = exchange(client, confidential_client_a, subject)

    assert response.status_code == 200
    assert response.json()["expires_in"] <= 100


def test_it_carries_act_in_a_jwt(client, subject, confidential_client_a, project_a):
    project_a.token_format = Project.TokenFormat.JWT
    project_a.save()

    token = exchange(client, confidential_client_a, subject).json()["access_token"]

    assert jwt_tokens.verify(project_a, token)["act"] == {"sub": confidential_client_a.client_id}


def test_it_never_widens_scope(client, subject, confidential_client_a):
    response = exchange(client, confidential_client_a, subject, scope="mcp:tools mcp:prompts")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert AccessToken.objects.count() == 1


@pytest.mark.parametrize("resource", ["https://mcp.bravo.example/mcp", "https://elsewhere.example/"])
def test_it_retargets_only_within_the_project(client, subject, confidential_client_a, resource):
    response = exchange(client, confidential_client_a, subject, resource=resource)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_it_refuses_a_subject_token_of_another_project(client, confidential_client_a, public_client_b, end_user_b):
    code, verifier = make_code(public_client_b, end_user_b)
    foreign = redeem(client, public_client_b, code, verifier).json()["access_token"]

    response = exchange(client, confidential_client_a, foreign)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert AccessToken.objects.count() == 1


@pytest.mark.parametrize("params", [{"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
                                    {"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"},
                                    {"subject_token": ""}])
def test_it_refuses_unsupported_token_types(client, subject, confidential_client_a, params):
    response = exchange(client, confidential_client_a, subject, **params)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_it_refuses_a_public_client_exchanging_another_clients_token(client, subject, project_a):
    other = _public_client(project_a, name="Another public client")

    response = exchange(client, other, subject)

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_it_requires_client_authentication(client, subject, confidential_client_a, project_a):
    data = {"grant_type": EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS}

    response = post_form(client, token_url(project_a), data, HTTP_AUTHORIZATION=basic(confidential_client_a, "bad"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# --- mcpauth exchange -----------------------------------------------------------------------------
def mcpauth_exchange(http, project, body, secret=None):
    return http.post(f"/p/{project.slug}/api/oauth/token/exchange", json.dumps(body), content_type="application/json",
                     HTTP_AUTHORIZATION=f"Bearer {secret or project.registration_secret}")


def test_it_mints_tokens_for_a_trusted_subject(client, public_client_a, project_a):
    response = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "user-42",
                                                    "scopes": ["mcp:tools"]})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "mcp:tools"
    assert body["expires_in"] == project_a.access_token_ttl
    assert body["access_token"].startswith("mcpat_") and body["refresh_token"].startswith("mcprt_")
    user = User.objects.get(project=project_a, subject="user-42")
    answer = describe(client, project_a, body["access_token"])
    assert answer["sub"] == "user-42" and answer["aud"] == "https://mcp.alpha.example/mcp"
    assert answer["client_id"] == public_client_a.client_id
    assert AccessToken.objects.get().user == user and AccessToken.objects.get().token == ""
    event = AuditEvent.objects.get(project=project_a, kind="token.exchanged")
    assert event.client_id == public_client_a.client_id and event.detail["subject"] == "user-42"
    assert body["access_token"] not in json.dumps(event.detail)


def test_its_refresh_token_works_at_the_token_endpoint(client, public_client_a, project_a):
    from tests.token_support import refresh

    body = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "user-42",
                                                "scopes": ["mcp:tools"],
                                                "resource": "https://files.alpha.example/mcp"}).json()

    response = refresh(client, public_client_a, body["refresh_token"])

    assert response.status_code == 200
    assert response.json()["scope"] == "mcp:tools"
    assert RefreshToken.objects.latest("pk").resource == ["https://files.alpha.example/mcp"]


def test_it_reuses_an_existing_end_user(client, public_client_a, end_user_a, project_a):
    response = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id,
                                                    "subject": end_user_a.subject})

    assert response.status_code == 200
    assert AccessToken.objects.get().user == end_user_a
    assert response.json()["scope"] == " ".join(project_a.scope_names)


def test_it_is_bounded_by_the_clients_scopes(client, public_client_a, project_a):
    public_client_a.metadata["scope"] = "mcp:tools"
    public_client_a.save()

    response = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "u",
                                                    "scopes": ["mcp:tools", "mcp:prompts"]})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


def test_it_refuses_a_resource_outside_the_project(client, public_client_a, project_a):
    response = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "u",
                                                    "resource": "https://mcp.bravo.example/mcp"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_it_requires_a_secret_holding_exchange(client, public_client_a, project_a):
    _, secret = ProjectSecret.issue(project_a, "introspection only", ["introspect"])

    response = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "u"}, secret)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert not AccessToken.objects.exists()


def test_it_refuses_another_projects_secret_and_client(client, public_client_a, public_client_b, project_a,
                                                       project_b):
    foreign_secret = mcpauth_exchange(client, project_a, {"client_id": public_client_a.client_id, "subject": "u"},
                                      project_b.registration_secret)
    foreign_client = mcpauth_exchange(client, project_a, {"client_id": public_client_b.client_id, "subject": "u"})

    assert foreign_secret.status_code == 401 and foreign_secret.json()["error"] == "invalid_token"
    assert foreign_client.status_code == 401 and foreign_client.json()["error"] == "invalid_client"


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"client_id": "x"}),
                                  json.dumps({"subject": ""}), json.dumps({"subject": 5}),
                                  json.dumps({"subject": "u", "scopes": "mcp:tools"})])
def test_it_refuses_malformed_requests(client, public_client_a, project_a, body):
    payload = json.loads(body) if body.startswith("{") else None
    if isinstance(payload, dict) and "client_id" not in payload:
        payload["client_id"] = public_client_a.client_id
        body = json.dumps(payload)

    response = client.post(f"/p/{project_a.slug}/api/oauth/token/exchange", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")

    assert response.status_code in (400, 401)
    assert response.json()["error"] == ("invalid_client" if body == json.dumps({"client_id": "x"}) else "invalid_request")
    assert not AccessToken.objects.exists()


def test_a_proof_binds_the_exchanged_token_to_its_key(client, subject, confidential_client_a, project_a):
    """RFC 9449 §5: in a project that takes DPoP proofs, an exchange with a proof is a DPoP token."""
    project_a.dpop = Project.Dpop.ALLOWED
    project_a.save()
    key = DpopKey()
    proof = key.proof("POST", f"{project_a.issuer}/oauth/token")

    response = exchange(client, confidential_client_a, subject, HTTP_DPOP=proof)

    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    assert describe(client, project_a, response.json()["access_token"])["cnf"] == {"jkt": key.jkt}
