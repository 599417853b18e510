"""The dashboard's Webhooks page: add (secret shown once), edit events, disable, rotate, send a test
event, the delivery log with "Retry now", delete; viewers read only; another project's is a 404."""

import re

import pytest

from projects.models import AuditEvent, ProjectMember
from tests.webhooks.support import deliver
from webhooks import changes
from webhooks.models import Delivery, Webhook

PAGE = "/projects/alpha/webhooks"


@pytest.fixture
def operator(client, alice):
    client.force_login(alice)
    return client


def revealed_secret(html: str) -> str:
    return re.search(r'id="new-webhook-secret" type="text" readonly value="(whsec_[^"]+)"', html).group(1)


def test_it_adds_a_webhook_and_shows_the_secret_once(operator, project_a, receiver):
    page = operator.get(PAGE)
    assert page.status_code == 200 and "No webhooks." in page.content.decode()
    assert 'value="grant.revoked"' in page.content.decode()
    response = operator.post(PAGE, {"url": receiver.url, "events": ["grant.created", "grant.revoked"]})
    html = response.content.decode()
    assert response.status_code == 200 and "stored encrypted" in html
    secret = revealed_secret(html)
    hook = Webhook.objects.get(project=project_a)
    assert hook.events == ["grant.created", "grant.revoked"] and secret not in hook.secret_encrypted
    assert secret not in operator.get(PAGE).content.decode()  # shown once
    assert AuditEvent.objects.filter(project=project_a, kind="webhook.created").count() == 1


def test_it_refuses_a_private_address_and_unknown_events(operator, project_a, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    response = operator.post(PAGE, {"url": "https://192.168.1.10/hook", "events": ["grant.created"]})
    assert response.status_code == 400 and "the address is not allowed" in response.content.decode()
    assert "the address is not allowed" in response.context["form"].errors["url"][0]  # on its field, unprefixed
    assert not response.context["form"].errors["url"][0].startswith("url:")
    response = operator.post(PAGE, {"url": "https://hooks.example/x", "events": ["grant.exploded"]})
    assert response.status_code == 400
    assert not Webhook.objects.exists()


def test_it_edits_disables_rotates_tests_retries_and_deletes(operator, project_a, receiver):
    hook, first = changes.create(project_a, receiver.url, ["grant.created"], actor="test")
    base = f"{PAGE}/{hook.pk}"
    assert operator.post(base + "/events", {"events": ["grant.revoked", "secret.created"]}).status_code == 302
    hook.refresh_from_db()
    assert hook.events == ["grant.revoked", "secret.created"]
    operator.post(base + "/toggle")
    hook.refresh_from_db()
    assert not hook.enabled
    operator.post(base + "/toggle")
    rotated = operator.post(base + "/rotate")
    second = revealed_secret(rotated.content.decode())
    assert second != first
    assert operator.post(base + "/test").status_code == 302
    receiver.statuses = [500] * 7
    assert receiver.received == []
    for _ in range(7):
        Delivery.objects.filter(state="pending").update(next_attempt_at="2000-01-01T00:00:00Z")
        deliver()
    failed = Delivery.objects.get(project=project_a)
    assert failed.state == "failed" and failed.attempts == 7
    html = operator.get(PAGE).content.decode()
    assert "webhook.test" in html and "Failed" in html and "HTTP 500" in html and "Retry now" in html
    assert operator.post(f"{PAGE}/deliveries/{failed.pk}/retry").status_code == 302
    deliver()
    failed.refresh_from_db()
    assert failed.state == "delivered" and receiver.received[-1].verified(first)  # both secrets sign for now
    assert receiver.received[-1].verified(second)
    assert operator.post(base + "/delete").status_code == 302
    assert not Webhook.objects.exists()


def test_a_viewer_sees_but_cannot_change(client, project_a, bob, receiver):
    ProjectMember.objects.create(project=project_a, user=bob, role=ProjectMember.Role.VIEWER)
    hook, _ = changes.create(project_a, receiver.url, ["grant.created"], actor="test")
    client.force_login(bob)
    html = client.get(PAGE).content.decode()
    assert receiver.url in html and "Add a webhook" not in html and "Rotate secret" not in html
    assert client.post(PAGE, {"url": receiver.url, "events": ["grant.created"]}).status_code == 403
    assert client.post(f"{PAGE}/{hook.pk}/rotate").status_code == 403
    assert client.post(f"{PAGE}/{hook.pk}/delete").status_code == 403
    assert Webhook.objects.count() == 1


def test_another_projects_webhooks_are_404(operator, project_a, project_b, receiver):
    theirs, _ = changes.create(project_b, receiver.url, ["grant.created"], actor="test")
    delivery = changes.send_test(theirs, actor="test")
    assert operator.get("/projects/bravo/webhooks").status_code == 404
    assert receiver.url not in operator.get(PAGE).content.decode()
    for path in [f"{PAGE}/{theirs.pk}/toggle", f"{PAGE}/{theirs.pk}/rotate", f"{PAGE}/{theirs.pk}/delete",
                 f"{PAGE}/{theirs.pk}/test", f"{PAGE}/deliveries/{delivery.pk}/retry"]:
        assert operator.post(path).status_code == 404, path
    assert Webhook.objects.get(pk=theirs.pk).enabled


def test_the_page_cannot_be_framed(operator, project_a):
    response = operator.get(PAGE)
    assert response["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in response["Content-Security-Policy"]
