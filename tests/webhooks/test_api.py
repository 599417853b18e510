"""Management API for webhooks (/api/v1/projects/{slug}/webhooks): secrets shown once, changes
audited, unknown fields refused, another project's webhooks invisible."""

import pytest

from dashboard.models import OperatorToken
from projects.models import AuditEvent, ProjectMember
from tests.webhooks.support import deliver
from webhooks import changes
from webhooks.models import Delivery, Webhook

URL = "/api/v1/projects/alpha/webhooks"


@pytest.fixture
def api(alice):
    return {"HTTP_AUTHORIZATION": f"Bearer {OperatorToken.issue(alice, 'ci')[1]}"}


def create(client, api, url, events=("grant.created", "grant.revoked")):
    return client.post(URL, {"url": url, "events": list(events)}, content_type="application/json", **api)


def test_it_creates_a_webhook_and_shows_its_secret_once(client, project_a, receiver, api):
    response = create(client, api, receiver.url)
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["grant.created", "grant.revoked"]
    row = Webhook.objects.get(project=project_a, pk=body["id"])
    assert body["secret"] not in row.secret_encrypted
    listed = client.get(URL, **api)
    assert listed.status_code == 200 and [h["id"] for h in listed.json()] == [row.pk]
    assert "secret" not in listed.json()[0] and body["secret"] not in listed.content.decode()
    one = client.get(f"{URL}/{row.pk}", **api).json()
    assert "secret" not in one and one["url"] == receiver.url
    assert AuditEvent.objects.get(project=project_a, kind="webhook.created").actor == "alice@example.com"


@pytest.mark.parametrize("body,field", [
    ({"url": "https://hooks.example/x", "events": ["grant.exploded"]}, "events"),
    ({"url": "https://hooks.example/x", "events": []}, "events"),
    ({"url": "http://hooks.example/x", "events": ["grant.created"]}, "url"),
    ({"url": "https://169.254.169.254/latest", "events": ["grant.created"]}, "url"),
    ({"url": "https://hooks.example/x", "events": ["grant.created"], "secret": "whsec_mine"}, "secret"),
])
def test_it_refuses_bad_webhooks(client, project_a, api, body, field):
    response = client.post(URL, body, content_type="application/json", **api)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request" and field in response.json()["fields"]
    assert not Webhook.objects.exists()


def test_it_changes_rotates_tests_and_deletes(client, project_a, receiver, api):
    body = create(client, api, receiver.url).json()
    path = f"{URL}/{body['id']}"
    response = client.patch(path, {"events": ["client.registered"], "enabled": False},
                            content_type="application/json", **api)
    assert response.status_code == 200 and response.json()["events"] == ["client.registered"]
    assert response.json()["enabled"] is False
    assert client.patch(path, {"colour": "red"}, content_type="application/json", **api).status_code == 400
    client.patch(path, {"enabled": True}, content_type="application/json", **api)
    rotated = client.post(path + "/rotate-secret", **api)
    assert rotated.status_code == 200 and rotated.json()["secret"] != body["secret"]
    queued = client.post(path + "/test", **api)
    assert queued.status_code == 202 and queued.json()["type"] == "webhook.test"
    assert receiver.received == []  # queued, not sent by the request
    deliver()
    (got,) = receiver.received
    assert got.verified(rotated.json()["secret"]) == got.verified(body["secret"])
    assert got.event["data"] == {"webhook_id": body["id"], "project": "alpha"}
    log = client.get(path + "/deliveries", **api).json()
    assert [(d["type"], d["state"], d["attempts"], d["last_status"]) for d in log] == [("webhook.test", "delivered", 1, 204)]
    assert client.delete(path, **api).status_code == 204
    assert not Webhook.objects.exists() and not Delivery.objects.exists()
    kinds = set(AuditEvent.objects.filter(project=project_a, kind__startswith="webhook.").values_list("kind", flat=True))
    assert kinds == {"webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.test_sent",
                     "webhook.deleted"}


def test_it_retries_a_failed_delivery_only(client, project_a, receiver, api):
    hook, _ = changes.create(project_a, receiver.url, ["grant.revoked"], actor="test")
    queued = changes.send_test(hook, actor="test")
    path = f"{URL}/{hook.pk}/deliveries/{queued.pk}/retry"
    response = client.post(path, **api)
    assert response.status_code == 400 and "fields" in response.json()  # still pending
    Delivery.objects.filter(pk=queued.pk).update(state="failed", next_attempt_at=None, attempts=7)
    response = client.post(path, **api)
    assert response.status_code == 200 and response.json()["state"] == "pending"
    deliver()
    assert Delivery.objects.get(pk=queued.pk).state == "delivered"


def test_a_viewer_cannot_change_webhooks(client, project_a, bob, receiver):
    ProjectMember.objects.create(project=project_a, user=bob, role=ProjectMember.Role.VIEWER)
    bob_api = {"HTTP_AUTHORIZATION": f"Bearer {OperatorToken.issue(bob, 'ci')[1]}"}
    hook, _ = changes.create(project_a, receiver.url, ["grant.revoked"], actor="test")
    listed = client.get(URL, **bob_api)
    assert listed.status_code == 200 and [h["id"] for h in listed.json()] == [hook.pk]
    assert create(client, bob_api, receiver.url).status_code == 403
    assert client.post(f"{URL}/{hook.pk}/rotate-secret", **bob_api).status_code == 403
    assert client.delete(f"{URL}/{hook.pk}", **bob_api).status_code == 403
    assert Webhook.objects.count() == 1
    kept = Webhook.objects.get(pk=hook.pk)
    assert kept.secret_encrypted == hook.secret_encrypted and not kept.previous_secret_encrypted  # not rotated
    assert not AuditEvent.objects.filter(project=project_a, kind="webhook.secret_rotated").exists()


def test_project_a_cannot_see_or_touch_project_bs_webhooks(client, project_a, project_b, receiver, api):
    theirs, _ = changes.create(project_b, receiver.url, ["grant.revoked"], actor="test")
    delivery = changes.send_test(theirs, actor="test")
    assert client.get(URL, **api).json() == []
    assert client.get("/api/v1/projects/bravo/webhooks", **api).status_code == 404
    for method, path in [("get", f"{URL}/{theirs.pk}"), ("patch", f"{URL}/{theirs.pk}"),
                         ("delete", f"{URL}/{theirs.pk}"), ("post", f"{URL}/{theirs.pk}/rotate-secret"),
                         ("post", f"{URL}/{theirs.pk}/test"), ("get", f"{URL}/{theirs.pk}/deliveries"),
                         ("post", f"{URL}/{theirs.pk}/deliveries/{delivery.pk}/retry")]:
        kwargs = {"content_type": "application/json", "data": {"enabled": False}} if method == "patch" else {}
        response = getattr(client, method)(path, **kwargs, **api)
        assert response.status_code == 404, (method, path)
    theirs.refresh_from_db()
    assert theirs.enabled and Delivery.objects.filter(project=project_b).count() == 1
