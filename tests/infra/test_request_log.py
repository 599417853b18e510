"""The request log line's fields (API.md "Operations": request_id, method, path, status, duration_ms,
project, client_id, error), with the path free of query strings and credential-like segments. The
JSON rendering itself is checked on a real server in test_observability.py."""

import logging
import secrets

import pytest

from tests.token_support import basic, post_form, token_url

pytestmark = pytest.mark.django_db


def request_lines(caplog) -> list[dict]:
    return [r.msg for r in caplog.records if r.name == "mcpauth.request" and isinstance(r.msg, dict)]


@pytest.fixture
def caplog_info(caplog):
    caplog.set_level(logging.INFO, logger="mcpauth.request")
    return caplog


def test_it_logs_every_contract_field_of_a_request(client, caplog_info, project_a, confidential_client_a):
    response = post_form(client, token_url(project_a), {"grant_type": "authorization_code", "code": "nope",
                                                        "redirect_uri": "https://backend.example/callback"},
                         HTTP_AUTHORIZATION=basic(confidential_client_a), HTTP_X_REQUEST_ID="trace-1")

    [line] = request_lines(caplog_info)
    assert response["X-Request-Id"] == "trace-1"
    assert {k: line[k] for k in ("request_id", "method", "path", "status", "project", "client_id", "error")} == {
        "request_id": "trace-1", "method": "POST", "path": "/p/alpha/oauth/token", "status": 400,
        "project": "alpha", "client_id": confidential_client_a.client_id, "error": "invalid_grant"}
    assert isinstance(line["duration_ms"], float)


def test_the_path_has_no_query_string(client, caplog_info, project_a):
    code = secrets.token_urlsafe(32)

    client.get(f"/p/alpha/.well-known/oauth-authorization-server?code={code}&state=s3cret")

    [line] = request_lines(caplog_info)
    assert line["path"] == "/p/alpha/.well-known/oauth-authorization-server"
    assert code not in str(caplog_info.records[-1].msg)


def test_credential_like_path_segments_are_masked(client, caplog_info, project_a):
    request_id = secrets.token_urlsafe(32)
    token = "mcpat_" + secrets.token_urlsafe(32)

    client.get(f"/p/alpha/api/oauth/authorization-requests/{request_id}",
               HTTP_AUTHORIZATION=f"Bearer {project_a.registration_secret}")
    client.get(f"/p/alpha/oauth/{token}")

    paths = [line["path"] for line in request_lines(caplog_info)]
    assert paths == ["/p/alpha/api/oauth/authorization-requests/…", "/p/alpha/oauth/…"]
    everything = str([r.msg for r in caplog_info.records])
    assert request_id not in everything and token not in everything


def test_a_client_id_in_the_path_is_kept(client, caplog_info, project_a, public_client_a):
    client.get(f"/p/alpha/api/oauth/register/{public_client_a.client_id}")

    [line] = request_lines(caplog_info)
    assert line["path"] == f"/p/alpha/api/oauth/register/{public_client_a.client_id}"
