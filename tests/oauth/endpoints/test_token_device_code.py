"""RFC 8628 §3.4–3.5 at the token endpoint: polling, slow_down, denial, expiry, single redemption."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth.models import AccessToken, DeviceGrant, RefreshToken
from projects.models import AuditEvent
from tests.device_support import DEVICE_CODE, device_client, poll, start
from tests.dpop_support import DpopKey
from tests.token_support import refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(project_a):
    return device_client(project_a)


def started(http, app, **params) -> tuple[str, DeviceGrant]:
    body = start(http, app, **params).json()
    return body["device_code"], DeviceGrant.objects.get(project=app.project)


def approve(row: DeviceGrant, user) -> None:
    """What the consent page records when the person allows the device (tested in test_device_verification)."""
    DeviceGrant.objects.filter(pk=row.pk).update(status=DeviceGrant.AUTHORIZED, user=user)


def wait_out_the_interval(row: DeviceGrant) -> None:
    """The previous poll was long enough ago (moved back, instead of sleeping through the interval)."""
    DeviceGrant.objects.filter(pk=row.pk).update(polled_at=timezone.now() - timedelta(minutes=1))


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def test_it_answers_authorization_pending_until_the_person_decides(client, app):
    device_code, row = started(client, app)
    assert error_of(poll(client, app, device_code)) == (400, "authorization_pending")
    row.refresh_from_db()
    assert row.polled_at is not None and row.interval == 5 and row.redeemed_at is None
    assert not AccessToken.objects.exists()


def test_it_answers_slow_down_and_adds_5_seconds_to_the_interval_when_polled_too_fast(client, app):
    device_code, row = started(client, app)
    assert error_of(poll(client, app, device_code)) == (400, "authorization_pending")
    assert error_of(poll(client, app, device_code)) == (400, "slow_down")
    row.refresh_from_db()
    assert row.interval == 10
    assert error_of(poll(client, app, device_code)) == (400, "slow_down")
    row.refresh_from_db()
    assert row.interval == 15  # "for this and all subsequent requests"


def test_a_poll_after_the_interval_is_pending_again_and_keeps_the_raised_interval(client, app):
    device_code, row = started(client, app)
    poll(client, app, device_code)
    poll(client, app, device_code)  # slow_down: 10 s
    wait_out_the_interval(row)
    assert error_of(poll(client, app, device_code)) == (400, "authorization_pending")
    row.refresh_from_db()
    assert row.interval == 10


def test_it_issues_tokens_once_the_person_allowed_bound_to_the_granted_resource(client, app, end_user_a):
    device_code, row = started(client, app, resource="https://files.alpha.example/mcp", scope="mcp:tools")
    approve(row, end_user_a)
    response = poll(client, app, device_code)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "mcp:tools" and body["refresh_token"]
    access = AccessToken.objects.get()
    assert (access.user, access.application, access.resource) == (end_user_a, app, ["https://files.alpha.example/mcp"])
    row.refresh_from_db()
    assert row.redeemed_at is not None and row.token_family is not None
    assert RefreshToken.objects.get().token_family == row.token_family


def test_its_refresh_token_works_for_a_client_with_only_the_device_grant(client, app, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    first = poll(client, app, device_code).json()
    response = refresh(client, app, first["refresh_token"])
    assert response.status_code == 200, response.content
    assert response.json()["access_token"] != first["access_token"]


def test_a_resource_beyond_the_grant_is_invalid_target(client, app, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    response = poll(client, app, device_code, resource="https://files.alpha.example/mcp")
    assert error_of(response) == (400, "invalid_target")
    row.refresh_from_db()
    assert row.redeemed_at is None and not AccessToken.objects.exists()


def test_it_answers_access_denied_when_the_person_denied(client, app):
    device_code, row = started(client, app)
    DeviceGrant.objects.filter(pk=row.pk).update(status=DeviceGrant.DENIED)
    assert error_of(poll(client, app, device_code)) == (400, "access_denied")
    assert not AccessToken.objects.exists()


def test_it_answers_expired_token_once_the_code_has_expired(client, app, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    DeviceGrant.objects.filter(pk=row.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert error_of(poll(client, app, device_code)) == (400, "expired_token")
    assert not AccessToken.objects.exists()


def test_a_device_code_is_redeemed_once_and_a_replay_revokes_what_it_issued(client, app, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    assert poll(client, app, device_code).status_code == 200
    wait_out_the_interval(row)
    assert error_of(poll(client, app, device_code)) == (400, "invalid_grant")
    assert not AccessToken.objects.exists()
    assert RefreshToken.objects.get().revoked is not None
    assert AuditEvent.objects.filter(project=app.project, kind="token.device_code_replayed").count() == 1


def test_an_unknown_device_code_is_invalid_grant(client, app):
    started(client, app)
    assert error_of(poll(client, app, "not-a-device-code")) == (400, "invalid_grant")


def test_a_missing_device_code_is_invalid_request(client, app):
    assert error_of(poll(client, app, "")) == (400, "invalid_request")


def test_another_client_of_the_project_cannot_redeem_it(client, app, project_a, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    other = device_client(project_a, name="Other CLI")
    assert error_of(poll(client, other, device_code)) == (400, "invalid_grant")
    row.refresh_from_db()
    assert row.redeemed_at is None


def test_a_device_code_of_project_a_is_invalid_grant_at_project_b(client, app, project_b, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    client_b = device_client(project_b)
    assert error_of(poll(client, client_b, device_code)) == (400, "invalid_grant")
    # Project A's client is nobody at project B.
    assert poll(client, app, device_code, project=project_b).json()["error"] == "invalid_client"
    row.refresh_from_db()
    assert row.redeemed_at is None and not AccessToken.objects.exists()


def test_it_is_unauthorized_client_once_the_project_turned_the_grant_off(client, app, project_a, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    project_a.device_grant = False
    project_a.save()
    assert error_of(poll(client, app, device_code)) == (400, "unauthorized_client")
    assert not AccessToken.objects.exists()


def test_a_client_that_did_not_register_the_grant_is_unauthorized_client(client, app, public_client_a, end_user_a):
    device_code, row = started(client, app)
    approve(row, end_user_a)
    assert error_of(poll(client, public_client_a, device_code)) == (400, "unauthorized_client")


# --- DPoP (RFC 9449 §5): the device grant is a public client's grant, bound like the code flow's ---

def poll_with_proof(http, app, device_code, proof):
    from tests.token_support import post_form, token_url

    data = {"grant_type": DEVICE_CODE, "device_code": device_code, "client_id": app.client_id}
    return post_form(http, token_url(app.project), data, HTTP_DPOP=proof)


def test_a_project_requiring_dpop_refuses_a_device_poll_without_a_proof(client, app, project_a, end_user_a):
    project_a.dpop = "required"
    project_a.save()
    device_code, row = started(client, app)
    approve(row, end_user_a)

    assert error_of(poll(client, app, device_code)) == (400, "invalid_request")
    row.refresh_from_db()
    assert row.redeemed_at is None
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()


def test_a_device_poll_with_a_proof_gets_tokens_bound_to_its_key(client, app, project_a, end_user_a):
    project_a.dpop = "required"
    project_a.save()
    key = DpopKey()
    device_code, row = started(client, app)
    approve(row, end_user_a)

    response = poll_with_proof(client, app, device_code, key.proof("POST", f"{project_a.issuer}/oauth/token"))

    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "DPoP"
    assert AccessToken.objects.get().claims["cnf"] == {"jkt": key.jkt}
    assert RefreshToken.objects.get().dpop_jkt == key.jkt
