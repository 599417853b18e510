"""mcpauth_service.rows.insert: `save()` of a new row without the SQL compiler, same row, same signals."""

from django.contrib.auth.hashers import check_password
from django.db.models.signals import post_save, pre_save

from mcpauth_service import rows
from oauth.models import Application
from projects.models import AuditEvent


def test_it_inserts_the_row_save_would_with_its_defaults_and_field_preparation(project_a):
    client = Application(project=project_a, name="Backend", client_type="confidential",
                         authorization_grant_type="client-credentials", client_secret="s3cret-value",
                         registration_path="secret", metadata={"client_name": "Backend"})
    rows.insert(client)
    stored = Application.objects.get(pk=client.pk)
    assert not client._state.adding and stored.client_id == client.client_id and len(stored.client_id) == 40
    assert stored.project_id == project_a.pk and stored.metadata == {"client_name": "Backend"}
    assert stored.created is not None and stored.created == client.created  # auto_now_add, as save() sets it
    assert stored.client_secret.startswith("mcpauth_hmac$") and check_password("s3cret-value", stored.client_secret)


def test_it_sends_the_save_signals_of_a_created_row(project_a):
    seen = []

    def pre(sender, instance, **kwargs):
        seen.append(("pre", instance.pk))

    def post(sender, instance, created, **kwargs):
        seen.append(("post", instance.pk, created))

    pre_save.connect(pre, sender=AuditEvent)
    post_save.connect(post, sender=AuditEvent)
    try:
        event = AuditEvent.record(project_a, "client.registered", actor="open", client_id="abc", path="open")
    finally:
        pre_save.disconnect(pre, sender=AuditEvent)
        post_save.disconnect(post, sender=AuditEvent)
    assert seen == [("pre", None), ("post", event.pk, True)]
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.kind, stored.actor, stored.client_id, stored.detail) == ("client.registered", "open", "abc",
                                                                             {"path": "open"})
