"""RFC 8628 §3.3 and §5.1: the verification page {issuer}/device, per project, guesses throttled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth.models import AuthorizationRequest, DeviceGrant
from tests.authz import query_of, sign_in_as
from tests.device_support import device_client, start

pytestmark = pytest.mark.django_db

NOT_FOUND = "That code is not valid here, or it has expired."


def started(http, project) -> tuple[dict, DeviceGrant]:
    body = start(http, device_client(project)).json()
    return body, DeviceGrant.objects.get(project=project)


def enter(http, project, user_code: str, **extra):
    return http.post(f"/p/{project.slug}/device", {"user_code": user_code}, **extra)


def test_it_asks_for_the_code(client, project_a):
    response = client.get("/p/alpha/device")
    assert response.status_code == 200
    assert 'name="user_code"' in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_signed_in_person_is_shown_the_code_to_check_and_allowing_authorizes_the_device(client, project_a,
                                                                                         end_user_a):
    body, row = started(client, project_a)
    sign_in_as(client, end_user_a)
    response = enter(client, project_a, body["user_code"].lower().replace("-", " "))  # typed loosely (§6.1)
    assert response.status_code == 302 and "/p/alpha/oauth/consent?request=" in response["Location"]
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<strong id="user-code">{body["user_code"]}</strong>' in html
    assert "Some CLI" in html and "matches the one shown on your device" in html
    decided = client.post(response["Location"], {"decision": "allow"})
    assert decided.status_code == 302 and decided["Location"] == "http://127.0.0.1:8000/p/alpha/device?result=approved"
    row.refresh_from_db()
    assert (row.status, row.user) == (DeviceGrant.AUTHORIZED, end_user_a)
    assert "Device connected" in client.get("/p/alpha/device?result=approved").content.decode()


def test_the_code_is_confirmed_even_after_an_earlier_consent(client, project_a, end_user_a):
    first, _ = started(client, project_a)
    sign_in_as(client, end_user_a)
    client.post(enter(client, project_a, first["user_code"])["Location"], {"decision": "allow"})
    second = start(client, DeviceGrant.objects.get().application).json()
    response = enter(client, project_a, second["user_code"])
    assert "/oauth/consent?request=" in response["Location"]  # asked again: RFC 8628 §5.4


def test_deny_records_the_denial(client, project_a, end_user_a):
    body, row = started(client, project_a)
    sign_in_as(client, end_user_a)
    consent = enter(client, project_a, body["user_code"])["Location"]
    decided = client.post(consent, {"decision": "deny"})
    assert query_of(decided["Location"]) == {"result": "denied"}
    row.refresh_from_db()
    assert (row.status, row.user) == (DeviceGrant.DENIED, None)


def test_the_verification_uri_complete_leads_to_sign_in_first(client, project_a):
    body, _ = started(client, project_a)
    response = client.get(body["verification_uri_complete"].removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == 302 and "/p/alpha/oauth/signin?request=" in response["Location"]
    pending = AuthorizationRequest.objects.get()
    assert pending.params["user_code"] == body["user_code"] and pending.user is None


def test_a_user_code_of_project_a_is_not_found_at_project_b(client, project_a, project_b, end_user_b):
    body, row = started(client, project_a)
    sign_in_as(client, end_user_b)
    response = enter(client, project_b, body["user_code"])
    assert response.status_code == 404 and NOT_FOUND in response.content.decode()
    assert not AuthorizationRequest.objects.exists()
    row.refresh_from_db()
    assert row.status == DeviceGrant.AUTHORIZATION_PENDING


def test_an_expired_code_is_not_found(client, project_a):
    body, row = started(client, project_a)
    DeviceGrant.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(seconds=1))
    response = enter(client, project_a, body["user_code"])
    assert response.status_code == 404 and NOT_FOUND in response.content.decode()
    assert not AuthorizationRequest.objects.exists()


def test_a_decided_code_cannot_be_entered_again(client, project_a, end_user_a):
    body, row = started(client, project_a)
    DeviceGrant.objects.filter(pk=row.pk).update(status=DeviceGrant.DENIED)
    assert enter(client, project_a, body["user_code"]).status_code == 404


def test_a_decision_on_an_expired_device_code_authorizes_nothing(client, project_a, end_user_a):
    body, row = started(client, project_a)
    sign_in_as(client, end_user_a)
    consent = enter(client, project_a, body["user_code"])["Location"]
    DeviceGrant.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(seconds=1))
    response = client.post(consent, {"decision": "allow"})
    assert response.status_code == 400 and "expired" in response.content.decode()
    row.refresh_from_db()
    assert row.status == DeviceGrant.AUTHORIZATION_PENDING and row.user is None


def test_wrong_codes_are_throttled_per_client_address(client, project_a):
    started(client, project_a)
    for i in range(20):
        assert enter(client, project_a, f"BBBB-BB{'BCDFGHJKLMNPQRSTVWXZ'[i // 20]}{'BCDFGHJKLMNPQRSTVWXZ'[i % 20]}").status_code == 404
    response = enter(client, project_a, "CCCC-CCCC")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many attempts" in response.content.decode()


def test_the_right_code_is_throttled_too_once_the_address_is_over(client, project_a):
    body, _ = started(client, project_a)
    for _ in range(10):
        enter(client, project_a, "BBBB-BBBB")
    assert enter(client, project_a, "BBBB-BBBB").status_code == 429  # the same code: per code
    for i in range(9):
        enter(client, project_a, f"DDDD-DDD{'BCDFGHJKLMNPQRSTVWXZ'[i]}")
    assert enter(client, project_a, body["user_code"]).status_code == 429  # 20 failures from this address


def test_one_code_is_throttled_from_any_address(client, project_a):
    for i in range(10):
        assert enter(client, project_a, "BBBB-BBBB", REMOTE_ADDR=f"198.51.100.{i}").status_code == 404
    assert enter(client, project_a, "BBBB-BBBB", REMOTE_ADDR="198.51.100.200").status_code == 429


def test_the_page_is_not_found_where_the_project_turned_the_grant_off(client, project_a):
    body, _ = started(client, project_a)
    project_a.device_grant = False
    project_a.save()
    assert client.get("/p/alpha/device").status_code == 404
    assert enter(client, project_a, body["user_code"]).status_code == 404
    assert not AuthorizationRequest.objects.exists()


def test_handoff_mode_sends_the_person_to_the_operators_login_page(client, project_a):
    project_a.login_mode, project_a.login_url = "handoff", "https://login.alpha.example/start"
    project_a.save()
    body, _ = started(client, project_a)
    response = enter(client, project_a, body["user_code"])
    pending = AuthorizationRequest.objects.get()
    assert response["Location"] == f"https://login.alpha.example/start?authorization_request={pending.pk}"
