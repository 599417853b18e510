"""Each webhook event, triggered through the real endpoint or action where it happens, delivered to a
real HTTP server and verified with `standardwebhooks`. No event carries a token, secret or password."""

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from dashboard.models import OperatorToken
from oauth.models import RefreshToken
from tests.authz import authorize_path, sign_in_as
from tests.conftest import PASSWORD
from tests.token_support import make_code, post_form, redeem, refresh
from tests.webhooks.support import deliver
from webhooks import changes
from webhooks.events import EVENTS
from webhooks.models import Delivery

CLAUDE_LIKE = {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
               "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
               "token_endpoint_auth_method": "none"}


@pytest.fixture
def subscribed(project_a, receiver):
    """Project A's webhook to the test's receiver, subscribed to every event; yields its secret."""
    _, secret = changes.create(project_a, receiver.url, list(EVENTS), actor="test")
    return secret


@pytest.fixture
def api(client, alice):
    token = OperatorToken.issue(alice, "ci")[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def delivered(receiver, secret, *secrets_never_sent) -> list[dict]:
    """Send what is due; every body verified, none carrying any of `secrets_never_sent`."""
    deliver()
    events = [r.verified(secret) for r in receiver.received]
    for r in receiver.received:
        assert not any(value and value in r.body.decode() for value in secrets_never_sent)
    return events


def of_type(events, type):
    return [e["data"] for e in events if e["type"] == type]


def register(client):
    return client.post("/p/alpha/api/oauth/register", json.dumps(CLAUDE_LIKE), content_type="application/json")


def test_client_registered(client, project_a, receiver, subscribed):
    answer = register(client).json()
    events = delivered(receiver, subscribed, answer["registration_access_token"])
    assert of_type(events, "client.registered") == [
        {"client_id": answer["client_id"], "client_name": "Claude", "registration_path": "open"}]


def test_client_deleted(client, project_a, receiver, subscribed):
    answer = register(client).json()
    response = client.delete(f"/p/alpha/api/oauth/register/{answer['client_id']}",
                             HTTP_AUTHORIZATION=f"Bearer {answer['registration_access_token']}")
    assert response.status_code == 204
    events = delivered(receiver, subscribed, answer["registration_access_token"])
    assert of_type(events, "client.deleted") == [
        {"client_id": answer["client_id"], "client_name": "Claude", "registration_path": "open"}]


def test_client_registered_and_deleted_from_the_dashboard_api(client, project_a, receiver, subscribed, api):
    response = client.post("/api/v1/projects/alpha/clients", {"name": "Backend", "client_type": "confidential",
                                                              "grant_types": ["client_credentials"]},
                           content_type="application/json", **api)
    created = response.json()
    assert client.delete(f"/api/v1/projects/alpha/clients/{created['id']}", **api).status_code == 204
    events = delivered(receiver, subscribed, created["client_secret"])
    assert [e["type"] for e in events] == ["client.registered", "client.deleted"]
    assert of_type(events, "client.deleted")[0]["client_id"] == created["client_id"]


def test_grant_created_at_the_first_consent(client, project_a, public_client_a, end_user_a, receiver, subscribed):
    sign_in_as(client, end_user_a)
    for _ in range(2):  # the second "Allow" (prompt=consent) is the same grant
        page = client.get(authorize_path(project_a, public_client_a, scope="mcp:tools", prompt="consent"))["Location"]
        assert client.post(page, {"decision": "allow"}).status_code == 302
    events = delivered(receiver, subscribed, PASSWORD)
    assert of_type(events, "grant.created") == [
        {"client_id": public_client_a.client_id, "subject": end_user_a.subject, "scopes": ["mcp:tools"]}]


def test_grant_revoked_by_rfc_7009(client, project_a, public_client_a, end_user_a, receiver, subscribed):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()
    response = post_form(client, "/p/alpha/oauth/revoke", {"token": issued["refresh_token"],
                                                          "client_id": public_client_a.client_id})
    assert response.status_code == 200
    events = delivered(receiver, subscribed, issued["refresh_token"], issued["access_token"])
    assert of_type(events, "grant.revoked") == [
        {"client_id": public_client_a.client_id, "subject": end_user_a.subject, "reason": "revoked"}]


def test_grant_revoked_by_the_operator(client, project_a, public_client_a, end_user_a, receiver, subscribed, api):
    response = client.post(f"/api/v1/projects/alpha/end-users/{end_user_a.pk}/revoke", **api)
    assert response.status_code == 200, response.content
    response = client.post(f"/api/v1/projects/alpha/clients/{public_client_a.pk}/revoke-tokens", **api)
    assert response.status_code == 200
    events = delivered(receiver, subscribed)
    assert of_type(events, "grant.revoked") == [
        {"client_id": None, "subject": end_user_a.subject, "reason": "end_user"},
        {"client_id": public_client_a.client_id, "subject": None, "reason": "client"}]


def test_token_reuse_detected(client, project_a, public_client_a, end_user_a, receiver, subscribed):
    code, verifier = make_code(public_client_a, end_user_a)
    issued = redeem(client, public_client_a, code, verifier).json()
    assert refresh(client, public_client_a, issued["refresh_token"]).status_code == 200
    RefreshToken.objects.filter(revoked__isnull=False).update(revoked=timezone.now() - timedelta(minutes=5))
    assert refresh(client, public_client_a, issued["refresh_token"]).json()["error"] == "invalid_grant"
    events = delivered(receiver, subscribed, issued["refresh_token"], issued["access_token"])
    assert of_type(events, "token.reuse_detected") == [
        {"client_id": public_client_a.client_id, "subject": end_user_a.subject}]
    assert of_type(events, "grant.revoked") == [
        {"client_id": public_client_a.client_id, "subject": end_user_a.subject, "reason": "refresh_reuse"}]


def test_secret_created_and_revoked(client, project_a, receiver, subscribed, api):
    response = client.post("/api/v1/projects/alpha/secrets", {"name": "introspector", "permissions": ["introspect"]},
                           content_type="application/json", **api)
    value, pk = response.json()["secret"], response.json()["id"]
    assert client.delete(f"/api/v1/projects/alpha/secrets/{pk}", **api).status_code == 204
    out = StringIO()
    call_command("createsecret", "--project", "alpha", "--name", "cli", "--permissions", "register", "--json", stdout=out)
    cli_value = json.loads(out.getvalue())["secret"]
    events = delivered(receiver, subscribed, value, cli_value)
    assert of_type(events, "secret.created") == [{"id": pk, "name": "introspector", "permissions": ["introspect"]},
                                                 {"id": pk + 1, "name": "cli", "permissions": ["register"]}]
    assert of_type(events, "secret.revoked") == [{"id": pk, "name": "introspector", "permissions": ["introspect"]}]


def test_member_changed(client, project_a, bob, receiver, subscribed, api):
    response = client.post("/api/v1/projects/alpha/members", {"email": "bob@example.com", "role": "admin"},
                           content_type="application/json", **api)
    assert response.status_code == 201
    member = project_a.memberships.get(user=bob)
    assert client.patch(f"/api/v1/projects/alpha/members/{member.pk}", {"role": "viewer"},
                        content_type="application/json", **api).status_code == 200
    assert client.delete(f"/api/v1/projects/alpha/members/{member.pk}", **api).status_code == 204
    events = delivered(receiver, subscribed, PASSWORD)
    assert of_type(events, "member.changed") == [
        {"member": "bob@example.com", "role": "admin", "change": "added"},
        {"member": "bob@example.com", "role": "viewer", "change": "role_changed"},
        {"member": "bob@example.com", "role": None, "change": "removed"}]


def test_settings_changed(client, project_a, receiver, subscribed, api):
    response = client.patch("/api/v1/projects/alpha", {"open_registration_enabled": False},
                            content_type="application/json", **api)
    assert response.status_code == 200
    call_command("setproject", "alpha", "--set", "open_registration_enabled=true", "--json", stdout=StringIO())
    events = delivered(receiver, subscribed)
    assert of_type(events, "settings.changed") == [{"changed": ["open_registration_enabled"]},
                                                   {"changed": ["open_registration_enabled"]}]


def test_every_event_has_a_test():
    tested = {name for name in EVENTS if f'"{name}"' in open(__file__).read()}
    assert tested == set(EVENTS)


@pytest.mark.django_db(transaction=True)
def test_delivery_is_never_on_the_request_path(client, project_a, receiver, subscribed):
    receiver.hold.clear()  # the receiver takes its time answering
    response = register(client)
    assert response.status_code == 201  # answered while nothing was sent at all
    assert receiver.received == []
    assert Delivery.objects.get(project=project_a).state == "pending"

    def dispatcher():
        try:
            deliver()
        finally:
            connection.close()

    sender = threading.Thread(target=dispatcher)
    sender.start()
    assert receiver.arrived.wait(30)  # the dispatcher, not the request, posts it
    receiver.hold.set()
    sender.join(30)
    assert Delivery.objects.get(project=project_a).state == "delivered"
