"""RFC 7517 key sets: one ES256 key per project, encrypted at rest, rotation keeps the old key."""

from datetime import timedelta

from django.utils import timezone

from projects.models import SigningKey


def test_it_publishes_one_es256_public_key_when_the_project_is_made(client, project_a):
    response = client.get("/p/alpha/.well-known/jwks.json")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    keys = response.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
    assert key["kid"] == SigningKey.current(project_a).kid
    assert "d" not in key  # never the private half


def test_it_stores_the_private_key_encrypted(project_a):
    row = SigningKey.current(project_a)
    assert "PRIVATE KEY" not in row.private_key_encrypted
    assert row.private_jwk().has_private


def test_it_keeps_each_projects_keys_apart(client, project_a, project_b):
    kid_a = client.get("/p/alpha/.well-known/jwks.json").json()["keys"][0]["kid"]
    kid_b = client.get("/p/bravo/.well-known/jwks.json").json()["keys"][0]["kid"]
    assert kid_a != kid_b


def test_rotation_publishes_the_new_key_and_keeps_the_previous(client, project_a):
    old = SigningKey.current(project_a).kid
    new = project_a.rotate_signing_key().kid
    kids = [k["kid"] for k in client.get("/p/alpha/.well-known/jwks.json").json()["keys"]]
    assert kids == [new, old]
    assert SigningKey.current(project_a).kid == new


def test_a_retired_key_leaves_once_its_tokens_can_have_expired(client, project_a):
    old = SigningKey.current(project_a)
    project_a.rotate_signing_key()
    SigningKey.objects.filter(pk=old.pk).update(
        retired_at=timezone.now() - timedelta(seconds=project_a.access_token_ttl + 1)
    )
    project_a.save()  # new generation, as a settings change would make
    kids = [k["kid"] for k in client.get("/p/alpha/.well-known/jwks.json").json()["keys"]]
    assert old.kid not in kids and len(kids) == 1


def test_the_rotatekeys_command_rotates_one_project(project_a, project_b):
    import json
    from io import StringIO

    from django.core.management import call_command

    before_b = SigningKey.current(project_b).kid
    out = StringIO()
    call_command("rotatekeys", "--project", "alpha", "--json", stdout=out)
    rotated = json.loads(out.getvalue())["rotated"]
    assert rotated["alpha"] == SigningKey.current(project_a).kid
    assert SigningKey.current(project_b).kid == before_b
    assert SigningKey.objects.filter(project=project_a).count() == 2
