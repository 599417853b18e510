"""infra.rows: hot-path statements, built once, store and read exactly what the ORM would."""

import uuid
from datetime import timedelta

from django.contrib.auth.hashers import check_password
from django.db import connection
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import set_token_value

from infra import rows
from oauth.models import AccessToken, Application, Grant, RefreshToken
from oauth.tokens import issue as tokens
from projects.models import AuditEvent


def test_an_inserted_access_token_reads_back_as_the_orm_would_store_it(public_client_a, end_user_a):
    expires = timezone.now() + timedelta(hours=1)
    row = AccessToken(user=end_user_a, application=public_client_a, scope="mcp:tools", expires=expires,
                      resource=["https://mcp.alpha.example/mcp"], claims={"act": {"sub": "svc"}})
    set_token_value(row, "mcpat_raw-value")

    with CaptureQueriesContext(connection) as queries:
        rows.insert(row)

    stored = AccessToken.objects.get(pk=row.pk)
    assert len(queries.captured_queries) == 1
    assert stored.token == ""  # only the checksum is kept (RFC 9700)
    assert stored.token_checksum == tokens.checksum("mcpat_raw-value")
    assert stored.resource == ["https://mcp.alpha.example/mcp"]
    assert stored.claims == {"act": {"sub": "svc"}}
    assert stored.expires == expires
    assert stored.created is not None and stored.updated is not None
    assert stored.user_id == end_user_a.pk and stored.application_id == public_client_a.pk
    assert row._state.adding is False


def test_a_row_comes_back_with_a_lazy_foreign_key(public_client_a, end_user_a):
    family = uuid.uuid4()
    row = RefreshToken(user=end_user_a, application=public_client_a, scope="mcp:tools", resource=["https://r"],
                       token_family=family)
    set_token_value(row, "mcprt_raw")
    rows.insert(row)

    with CaptureQueriesContext(connection) as queries:
        found = rows.select_one(RefreshToken, deferred=("user",), token_checksum=tokens.checksum("mcprt_raw"),
                                application_id=public_client_a.pk)
        read = len(queries.captured_queries)
        subject = found.user.subject  # loads the user now

    assert read == 1
    assert len(queries.captured_queries) == 2
    assert subject == end_user_a.subject
    assert found.pk == row.pk and found.token_family == family and found.resource == ["https://r"]
    assert found.revoked is None


def test_an_unknown_row_is_none(public_client_a):
    assert rows.select_one(Grant, code="nope", application_id=public_client_a.pk) is None


def statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


def pair(client, user, name):
    now = timezone.now()
    access = AccessToken(user=user, application=client, scope="mcp:tools", expires=now, resource=["https://r"])
    set_token_value(access, f"mcpat_{name}")
    refresh = RefreshToken(user=user, application=client, scope="mcp:tools", token_family=uuid.uuid4())
    set_token_value(refresh, f"mcprt_{name}")
    return access, refresh


def test_a_token_pair_and_the_code_it_spends_are_written_together(public_client_a, end_user_a):
    from tests.token_support import make_code

    code, _ = make_code(public_client_a, end_user_a)
    grant = Grant.objects.get(code=code)
    access, refresh = pair(public_client_a, end_user_a, "pair")
    now = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        issued = rows.write(access, refresh, link="access_token",
                            guard=rows.spend(Grant, grant.pk, "redeemed_at", redeemed_at=now,
                                             token_family=refresh.token_family))

    stored = RefreshToken.objects.select_related("access_token").get(pk=refresh.pk)
    assert issued is True
    assert len(statements(queries)) == (1 if connection.vendor == "postgresql" else 3)
    assert stored.access_token.pk == access.pk and refresh.access_token_id == access.pk
    assert stored.access_token.token_checksum == tokens.checksum("mcpat_pair")
    assert stored.access_token.resource == ["https://r"]
    assert stored.token_checksum == tokens.checksum("mcprt_pair") and stored.token_family == refresh.token_family
    assert Grant.objects.filter(pk=grant.pk, redeemed_at=now, token_family=refresh.token_family).exists()


def test_nothing_is_written_when_the_code_was_already_spent(public_client_a, end_user_a):
    from tests.token_support import make_code

    code, _ = make_code(public_client_a, end_user_a)
    grant = Grant.objects.get(code=code)
    spent_at = timezone.now() - timedelta(seconds=5)
    Grant.objects.filter(pk=grant.pk).update(redeemed_at=spent_at)
    access, refresh = pair(public_client_a, end_user_a, "late")

    issued = rows.write(access, refresh, link="access_token",
                        guard=rows.spend(Grant, grant.pk, "redeemed_at", redeemed_at=timezone.now()))

    assert issued is False
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()
    assert Grant.objects.get(pk=grant.pk).redeemed_at == spent_at


def test_an_access_token_alone_is_one_statement(confidential_client_a):
    access = AccessToken(application=confidential_client_a, scope="mcp:tools", expires=timezone.now(), resource=[])
    set_token_value(access, "mcpat_alone")

    with CaptureQueriesContext(connection) as queries:
        assert rows.write(access, relax_commit=True) is True

    assert len(statements(queries)) == 1
    assert AccessToken.objects.get(pk=access.pk).token_checksum == tokens.checksum("mcpat_alone")


def test_issued_token_rows_send_the_save_signals_of_created_rows(public_client_a, end_user_a):
    seen = []

    def post(sender, instance, created, **kwargs):
        seen.append((sender.__name__, instance.pk, created))

    access, refresh = pair(public_client_a, end_user_a, "signals")
    post_save.connect(post, sender=AccessToken)
    post_save.connect(post, sender=RefreshToken)
    try:
        rows.write(access, refresh, link="access_token")
    finally:
        post_save.disconnect(post, sender=AccessToken)
        post_save.disconnect(post, sender=RefreshToken)

    assert seen == [("AccessToken", access.pk, True), ("RefreshToken", refresh.pk, True)]


# --- insert: save() of a new row ----------------------------------------------------------------------


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
