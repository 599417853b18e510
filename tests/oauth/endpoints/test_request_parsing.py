"""Strict request parsing (oauth.endpoints.parsing): API.md "Errors", RFC 6749 §3.1, RFC 8259, RFC 9110.

Every refusal is the RFC's JSON error with its exact status, and a refused request writes nothing.
"""

import json
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from dashboard.models import OperatorToken
from oauth.models import AccessToken, Application, AuthorizationRequest, Grant, RefreshToken
from projects.models import AuditEvent, Project, ProjectSecret, SlugTaken, User
from tests.token_support import basic, make_code, post_form, token_url

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CLIENT = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
          "token_endpoint_auth_method": "none"}
TABLES = (AccessToken, RefreshToken, Grant, Application, User, AuditEvent, Project, ProjectSecret, AuthorizationRequest)


def rows() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def send(http, path: str, body: bytes | str, content_type: str, method: str = "POST", **extra):
    return http.generic(method, path, body, content_type=content_type, **extra)


def refused(response, status: int, error: str = "invalid_request") -> str:
    """Assert the RFC error shape; the description, for the test to look into."""
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["error"] == error
    assert set(body) <= {"error", "error_description"}
    return body.get("error_description", "")


@pytest.fixture
def code_request(public_client_a, end_user_a):
    code, verifier = make_code(public_client_a, end_user_a)
    return {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": public_client_a.client_id, "redirect_uri": "http://127.0.0.1/callback"}


@pytest.fixture
def alice_token(alice):
    return OperatorToken.issue(alice, "ci")[1]


def api(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# --- media types (RFC 9110 §15.5.16) --------------------------------------------------------------

def test_it_refuses_a_token_request_that_is_not_a_form_with_415(client, project_a, code_request):
    before = rows()
    response = send(client, token_url(project_a), urlencode(code_request), "text/plain")
    assert "application/x-www-form-urlencoded" in refused(response, 415)
    assert rows() == before


def test_it_refuses_multipart_without_a_boundary_with_400(client, project_a, code_request):
    """Django's MultiPartParserError used to surface as a 500."""
    before = rows()
    response = send(client, token_url(project_a), "--x\r\n\r\n--x--", "multipart/form-data")
    assert "multipart" in refused(response, 400)
    assert rows() == before


def test_it_takes_multipart_fields_by_the_same_rules(client, project_a, code_request):
    response = client.post(token_url(project_a), {**code_request, "code": ["a", "b"]})
    assert "code" in refused(response, 400)
    response = client.post(token_url(project_a), {**code_request, "upload": SimpleUploadedFile("a.txt", b"x")})
    assert "Files" in refused(response, 400)
    assert not AccessToken.objects.exists()
    assert client.post(token_url(project_a), code_request).status_code == 200


def test_it_refuses_a_registration_sent_as_text_plain_with_415(client, project_a):
    """A page on any site can POST text/plain cross-origin without a CORS preflight."""
    response = send(client, f"/p/{project_a.slug}/api/oauth/register", json.dumps(CLIENT), "text/plain")
    assert "application/json" in refused(response, 415)
    assert not Application.objects.exists()


def test_it_refuses_a_form_body_at_the_mcpauth_exchange_with_415(client, project_a, public_client_a):
    before = rows()
    response = send(client, f"/p/{project_a.slug}/api/oauth/token/exchange",
                    urlencode({"client_id": public_client_a.client_id, "subject": "u"}), FORM,
                    **api(project_a.registration_secret))
    refused(response, 415)
    assert rows() == before


def test_it_refuses_a_management_api_body_that_is_not_json_with_415(client, alice, alice_token):
    before = rows()
    response = send(client, "/api/v1/projects", "name=X&slug=x", FORM, **api(alice_token))
    assert "application/json" in refused(response, 415)
    assert rows() == before


def test_it_accepts_json_with_a_utf8_charset_and_form_or_json_at_introspection(client, project_a):
    response = send(client, f"/p/{project_a.slug}/api/oauth/register", json.dumps(CLIENT),
                    "application/json; charset=UTF-8")
    assert response.status_code == 201
    for body, content_type in ((urlencode({"token": "x"}), FORM), (json.dumps({"token": "x"}), JSON)):
        response = send(client, f"/p/{project_a.slug}/api/oauth/introspect", body, content_type,
                        **api(project_a.registration_secret))
        assert response.status_code == 200 and response.json() == {"active": False}


# --- repeated parameters (RFC 6749 §3.1) -------------------------------------------------------------

@pytest.mark.parametrize("name", ["grant_type", "code", "client_id", "code_verifier", "redirect_uri"])
def test_it_refuses_a_repeated_token_parameter_naming_it(client, project_a, code_request, name):
    pairs = [*code_request.items(), (name, code_request[name])]
    response = post_form(client, token_url(project_a), pairs)
    assert name in refused(response, 400)
    assert Grant.objects.filter(code=code_request["code"]).exists() and not AccessToken.objects.exists()


def test_it_refuses_a_parameter_given_in_the_query_and_the_body(client, project_a, code_request):
    response = post_form(client, token_url(project_a) + "?grant_type=authorization_code", code_request)
    assert "grant_type" in refused(response, 400)
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("path", ["oauth/revoke", "oauth/introspect"])
def test_it_refuses_a_repeated_token_at_revocation_and_introspection(client, project_a, confidential_client_a, path):
    response = post_form(client, f"/p/{project_a.slug}/{path}", [("token", "a"), ("token", "b")],
                         HTTP_AUTHORIZATION=basic(confidential_client_a))
    assert "token" in refused(response, 400)


def test_resource_may_repeat_rfc_8707(client, project_a, confidential_client_a):
    response = post_form(client, token_url(project_a), [("grant_type", "client_credentials"),
                                                        ("resource", project_a.resources[0]),
                                                        ("resource", project_a.resources[1])],
                         HTTP_AUTHORIZATION=basic(confidential_client_a))
    assert response.status_code == 200


def test_it_refuses_a_repeated_key_in_a_json_body(client, project_a, public_client_a):
    body = f'{{"client_id": "{public_client_a.client_id}", "subject": "u", "subject": "v"}}'
    response = send(client, f"/p/{project_a.slug}/api/oauth/token/exchange", body, JSON,
                    **api(project_a.registration_secret))
    refused(response, 400)
    assert not AccessToken.objects.exists() and not User.objects.filter(subject__in=["u", "v"]).exists()


# --- sizes (413 before the body is read; 411 for chunked bodies) -------------------------------------

@pytest.mark.parametrize("path,content_type", [("oauth/token", FORM), ("oauth/revoke", FORM),
                                               ("oauth/introspect", FORM), ("api/oauth/token/exchange", JSON),
                                               ("api/oauth/register", JSON)])
def test_it_answers_413_to_a_body_over_djangos_own_limit(client, project_a, path, content_type):
    """3 MB is past DATA_UPLOAD_MAX_MEMORY_SIZE: Django's RequestDataTooBig used to surface as a 500."""
    before = rows()
    body = "token=" + "x" * 3_000_000 if content_type == FORM else json.dumps({"x": "x" * 3_000_000})
    response = send(client, f"/p/{project_a.slug}/{path}", body, content_type, **api(project_a.registration_secret))
    assert "65536 bytes" in refused(response, 413)
    assert rows() == before


def test_it_answers_413_to_more_form_fields_than_allowed(client, project_a):
    """Past DATA_UPLOAD_MAX_NUMBER_FIELDS Django raised TooManyFieldsSent (a 500); 101 fields are refused."""
    response = send(client, token_url(project_a), "&".join(f"f{i}=1" for i in range(2000)), FORM)
    refused(response, 413)


def test_it_answers_413_past_the_management_api_limit(client, project_a, alice_token):
    response = send(client, "/api/v1/projects/alpha", json.dumps({"display_name": "x" * 300_000}), JSON, "PATCH",
                    **api(alice_token))
    refused(response, 413)
    project_a.refresh_from_db()
    assert project_a.display_name != "x" * 300_000


def test_it_answers_411_to_a_chunked_body(client, project_a, code_request):
    response = send(client, token_url(project_a), urlencode(code_request), FORM, HTTP_TRANSFER_ENCODING="chunked")
    refused(response, 411)
    assert not AccessToken.objects.exists()


def test_it_refuses_a_malformed_content_length(client, project_a, code_request):
    response = send(client, token_url(project_a), urlencode(code_request), FORM, CONTENT_LENGTH="12x")
    refused(response, 400)


# --- characters: charset, UTF-8, NUL, lone surrogates --------------------------------------------------

def test_it_refuses_a_form_in_another_charset(client, project_a, code_request):
    response = send(client, token_url(project_a), urlencode(code_request), FORM + "; charset=iso-8859-1")
    assert "UTF-8" in refused(response, 400)


@pytest.mark.parametrize("body", [b"grant_type=%FF%FE", b"grant_type=%ED%A0%80", "grant_type=é".encode("latin-1")])
def test_it_refuses_a_form_that_is_not_utf8(client, project_a, body):
    refused(send(client, token_url(project_a), body, FORM), 400)


def test_it_accepts_raw_utf8_in_a_form(client, project_a):
    response = send(client, f"/p/{project_a.slug}/api/oauth/introspect", "token=é".encode(), FORM,
                    **api(project_a.registration_secret))
    assert response.status_code == 200 and response.json() == {"active": False}


@pytest.mark.parametrize("query", ["x=%FF", "x=\xff", "x=%ED%A0%80"])
def test_it_refuses_a_query_string_that_is_not_utf8(client, project_a, query):
    """WSGI passes the query string as latin-1 characters: "\xff" is the raw byte 0xFF."""
    response = client.get(f"/p/{project_a.slug}/.well-known/oauth-authorization-server", QUERY_STRING=query)
    refused(response, 400)


def test_it_refuses_invalid_utf8_in_json(client, project_a):
    response = send(client, f"/p/{project_a.slug}/api/oauth/register", b'{"client_name": "\xff"}', JSON)
    refused(response, 400, "invalid_client_metadata")
    assert not Application.objects.exists()


def test_it_refuses_a_nul_in_the_registration_path(client, project_a):
    """PostgreSQL cannot compare text with NUL: the lookup used to fail with a 500."""
    response = client.get(f"/p/{project_a.slug}/api/oauth/register/x%00", HTTP_AUTHORIZATION="Bearer x")
    refused(response, 400)


def test_it_refuses_a_nul_in_a_query_string(client, project_a):
    response = client.get(f"/p/{project_a.slug}/.well-known/oauth-authorization-server?x=%00")
    refused(response, 400)


@pytest.mark.parametrize("path,error", [("api/oauth/register", "invalid_client_metadata"),
                                        ("api/oauth/token/exchange", "invalid_request")])
def test_it_refuses_a_lone_surrogate_in_json(client, project_a, public_client_a, path, error):
    before = rows()
    body = {**CLIENT, "client_id": public_client_a.client_id, "subject": "u", "software_version": "\ud800"}
    response = send(client, f"/p/{project_a.slug}/{path}", json.dumps(body), JSON,
                    **api(project_a.registration_secret))
    assert "surrogate" in refused(response, 400, error)
    assert rows() == before


def test_it_refuses_a_lone_surrogate_in_the_management_api(client, project_a, alice_token):
    response = send(client, "/api/v1/projects/alpha", json.dumps({"display_name": "\udfff"}), JSON, "PATCH",
                    **api(alice_token))
    refused(response, 400)
    assert AuditEvent.objects.filter(kind="settings.changed").count() == 0


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL jsonb cannot hold a lone surrogate at all")
def test_a_stored_lone_surrogate_does_not_break_the_client_list(client, project_a, public_client_a, alice_token):
    """Stored before parsing was strict (or by any other path): the listing still answers."""
    public_client_a.metadata = {**public_client_a.metadata, "software_version": "\ud800"}
    public_client_a.save()
    response = client.get("/api/v1/projects/alpha/clients", **api(alice_token))
    assert response.status_code == 200
    assert response.json()[0]["metadata"]["software_version"] == "\ud800"


# --- JSON shape: depth, top level, numbers -----------------------------------------------------------

def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def test_it_refuses_json_nested_deeper_than_32(client, project_a, alice_token):
    response = send(client, "/api/v1/projects/alpha", nested(33), JSON, "PATCH", **api(alice_token))
    assert "32" in refused(response, 400)
    response = send(client, "/api/v1/projects/alpha", nested(1000), JSON, "PATCH", **api(alice_token))
    refused(response, 400)


def test_json_nested_32_deep_is_parsed(client, project_a, alice_token):
    response = send(client, "/api/v1/projects/alpha", nested(32), JSON, "PATCH", **api(alice_token))
    # Parsed, then refused for what it says: "a" is no setting (not for its depth).
    assert response.status_code == 400 and list(response.json()["fields"]) == ["a"]


@pytest.mark.parametrize("body", ["[1, 2]", '"x"', "null", '{"a": NaN}', '{"a": 1e999}', '{"a": Infinity}'])
def test_it_refuses_json_that_is_not_an_object_of_finite_values(client, project_a, public_client_a, body):
    response = send(client, f"/p/{project_a.slug}/api/oauth/token/exchange", body, JSON,
                    **api(project_a.registration_secret))
    refused(response, 400)
    assert not AccessToken.objects.exists()


def test_the_handoff_refuses_a_body_that_is_not_json(client, project_a):
    response = send(client, f"/p/{project_a.slug}/api/oauth/authorization-requests/abc/complete", "subject=u",
                    "text/plain", **api(project_a.registration_secret))
    refused(response, 415)


# --- settings that would break a project, concurrent creation ----------------------------------------

def test_it_refuses_to_remove_every_resource(client, project_a, alice_token):
    response = send(client, "/api/v1/projects/alpha", json.dumps({"resources": []}), JSON, "PATCH",
                    **api(alice_token))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "at least one resource" in response.json()["fields"]["resources_text"][0]
    project_a.refresh_from_db()
    assert len(project_a.resources) == 2


def test_a_slug_taken_between_check_and_insert_is_slug_taken_and_writes_nothing(project_a, alice):
    before = rows()
    with pytest.raises(SlugTaken):
        Project.objects.create_project(owner=alice, name="Other", slug=project_a.slug)
    assert rows() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_of_one_slug_give_one_201_and_clear_400s(alice, alice_token):
    from django.test import Client

    from tests.oauth.endpoints.test_token_races import concurrently

    def create():
        return Client().post("/api/v1/projects", json.dumps({"name": "Same", "slug": "same"}), content_type=JSON,
                             **api(alice_token))

    responses = concurrently(6, create)

    assert sorted(r.status_code for r in responses) == [201] + [400] * 5
    assert all(r.json()["fields"] == {"slug": ["This slug is taken."]} for r in responses if r.status_code == 400)
    assert Project.objects.filter(slug="same").count() == 1


# --- the authorization endpoint's query (a browser route: refusals are pages or redirects) -----------

def test_authorize_refuses_a_repeated_client_id_with_an_error_page(client, project_a, public_client_a):
    query = urlencode([("client_id", public_client_a.client_id), ("client_id", public_client_a.client_id),
                       ("response_type", "code"), ("redirect_uri", "http://127.0.0.1/callback")])
    response = client.get(f"/p/{project_a.slug}/oauth/authorize?{query}")
    assert response.status_code == 400 and "Location" not in response
    assert not AuthorizationRequest.objects.exists()
