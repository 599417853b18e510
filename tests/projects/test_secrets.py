"""Project secrets (API.md): prefixed, shown once, stored hashed, scoped to one project."""

import re

from projects.models import AuditEvent, ProjectSecret


def test_the_registration_secret_has_the_format_and_all_four_permissions(project_a):
    assert re.fullmatch(r"mcps_[A-Za-z0-9_-]{43}", project_a.registration_secret)
    row = ProjectSecret.objects.get(project=project_a)
    assert row.permissions == ["register", "introspect", "exchange", "handoff"]


def test_it_never_stores_the_plaintext(project_a):
    secret = project_a.registration_secret
    row = ProjectSecret.objects.get(project=project_a)
    stored = " ".join(str(v) for v in ProjectSecret.objects.filter(pk=row.pk).values().first().values())
    assert secret not in stored
    assert secret[5:] not in stored
    assert len(row.digest) == 64 and row.prefix == secret[:13]


def test_it_authenticates_with_the_right_permission_and_records_use(project_a):
    row = ProjectSecret.authenticate(project_a, project_a.registration_secret, "introspect")
    assert row is not None
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_a_secret_of_project_a_is_refused_by_project_b(project_a, project_b):
    assert ProjectSecret.authenticate(project_b, project_a.registration_secret, "register") is None


def test_a_revoked_secret_is_refused(project_a):
    row = ProjectSecret.objects.get(project=project_a)
    row.revoke(actor="alice@example.com")
    assert ProjectSecret.authenticate(project_a, project_a.registration_secret, "register") is None
    assert AuditEvent.objects.filter(project=project_a, kind="secret.revoked").exists()


def test_a_missing_permission_is_refused(project_a):
    _, secret = ProjectSecret.issue(project_a, "introspection only", ["introspect"])
    assert ProjectSecret.authenticate(project_a, secret, "introspect") is not None
    assert ProjectSecret.authenticate(project_a, secret, "register") is None


def test_a_tampered_secret_is_refused(project_a):
    secret = project_a.registration_secret
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert ProjectSecret.authenticate(project_a, tampered, "register") is None
