"""Rotating SECRET_KEY, DIGEST_KEY and KEY_ENCRYPTION_KEY without losing what was made under the old
ones (docs/operations.md, "Keys"): SECRET_KEY_FALLBACKS, DIGEST_KEY_FALLBACKS, `KEY_ENCRYPTION_KEY=new,old`
with `manage.py reencryptkeys`."""

import json
from io import StringIO

import pytest
from cryptography.fernet import InvalidToken
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard.models import OperatorToken
from identity.models import IdentityProvider
from oauth.tokens import issue as tokens
from oauth.tokens import jwt_tokens
from projects import keys, secrets
from projects.models import Project, ProjectSecret, SigningKey
from tests.token_support import basic, post_form, token_url
from webhooks.models import Webhook

OLD, NEW = "old-digest-key-" + "o" * 40, "new-digest-key-" + "n" * 40
REGISTER = {"client_name": "Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "token_endpoint_auth_method": "none"}


@pytest.fixture
def old_digest_key(settings):
    settings.DIGEST_KEY = OLD
    settings.DIGEST_KEY_FALLBACKS = []
    return settings


def made_under_old_key(client, project, confidential_client, alice) -> dict:
    """One of each secret kept as a digest, made while DIGEST_KEY is OLD."""
    registered = client.post(f"/p/{project.slug}/api/oauth/register", json.dumps(REGISTER),
                             content_type="application/json").json()
    return {
        "project_secret": ProjectSecret.issue(project, "rs", ["introspect"])[1],
        "operator_token": OperatorToken.issue(alice, "script")[1],
        "registration": (registered["registration_client_uri"].removeprefix("http://127.0.0.1:8000"),
                         registered["registration_access_token"]),
        "client": confidential_client,
    }


def outcomes(client, project, made) -> dict[str, int]:
    path, registration_token = made["registration"]
    return {
        "project_secret": post_form(client, f"/p/{project.slug}/oauth/introspect", {"token": "mcpat_x"},
                                    HTTP_AUTHORIZATION=f"Bearer {made['project_secret']}").status_code,
        "operator_token": client.get("/api/v1/projects",
                                     HTTP_AUTHORIZATION=f"Bearer {made['operator_token']}").status_code,
        "registration": client.get(path, HTTP_AUTHORIZATION=f"Bearer {registration_token}").status_code,
        "client_secret": post_form(client, token_url(project), {"grant_type": "client_credentials"},
                                   HTTP_AUTHORIZATION=basic(made["client"])).status_code,
    }


def test_secrets_digested_under_the_previous_digest_key_match_while_it_is_a_fallback(
        client, old_digest_key, project_a, confidential_client_a, alice):
    made = made_under_old_key(client, project_a, confidential_client_a, alice)
    assert set(outcomes(client, project_a, made).values()) == {200}

    old_digest_key.DIGEST_KEY, old_digest_key.DIGEST_KEY_FALLBACKS = NEW, [OLD]

    assert outcomes(client, project_a, made) == {"project_secret": 200, "operator_token": 200,
                                                 "registration": 200, "client_secret": 200}


def test_without_the_fallback_every_secret_digested_under_the_old_key_is_refused(
        client, old_digest_key, project_a, confidential_client_a, alice):
    made = made_under_old_key(client, project_a, confidential_client_a, alice)

    old_digest_key.DIGEST_KEY = NEW

    assert outcomes(client, project_a, made) == {"project_secret": 401, "operator_token": 401,
                                                 "registration": 401, "client_secret": 401}


def test_new_secrets_are_digested_under_the_new_key_only(client, old_digest_key, project_a, alice):
    old_digest_key.DIGEST_KEY, old_digest_key.DIGEST_KEY_FALLBACKS = NEW, [OLD]
    row, secret = ProjectSecret.issue(project_a, "rs", ["introspect"])

    assert row.digest == secrets.digest(secret, NEW) != secrets.digest(secret, OLD)
    old_digest_key.DIGEST_KEY_FALLBACKS = []
    assert ProjectSecret.authenticate(project_a, secret, "introspect") is not None


# --- KEY_ENCRYPTION_KEY ------------------------------------------------------------------------------

def reencryptkeys(*args) -> dict:
    out = StringIO()
    call_command("reencryptkeys", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def jwt_a(settings, project_a):
    settings.KEY_ENCRYPTION_KEY = "old-kek-" + "o" * 40
    Project.objects.filter(pk=project_a.pk).update(token_format="jwt")
    SigningKey.objects.filter(project=project_a).delete()
    SigningKey.ensure(project_a)
    keys.load_private.cache_clear()  # decrypted keys are kept per process: start cold
    return project_a


def sign_and_verify(project) -> str:
    keys.load_private.cache_clear()
    token = jwt_tokens.encode(project, {"iss": project.issuer, "sub": "usr_1"})
    assert jwt_tokens.verify(project, token)["sub"] == "usr_1"
    return token


def test_reencryptkeys_moves_every_signing_key_to_the_new_key_encryption_key(settings, jwt_a, project_b):
    kids = set(SigningKey.objects.values_list("kid", flat=True))
    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40 + ",old-kek-" + "o" * 40

    assert reencryptkeys()["by_model"]["projects.SigningKey"] == SigningKey.objects.count()

    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40
    sign_and_verify(jwt_a)
    assert set(SigningKey.objects.values_list("kid", flat=True)) == kids  # same keys, same JWKS
    assert reencryptkeys()["by_model"]["projects.SigningKey"] == SigningKey.objects.count()  # idempotent


def test_reencryptkeys_moves_webhook_secrets_and_identity_provider_secrets_too(settings, jwt_a):
    """Everything encrypted with KEY_ENCRYPTION_KEY stays readable once the old key is dropped."""
    webhook, secret = Webhook.create(jwt_a, "https://hooks.acme.example/mcpauth", ["grant.revoked"])
    previous = webhook.rotate_secret()  # the rotated secret becomes the previous one, also encrypted
    provider = IdentityProvider(project=jwt_a, kind="github", name="GitHub", client_id="Iv1.abc")
    provider.client_secret = "upstream-client-secret"
    provider.save()
    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40 + ",old-kek-" + "o" * 40

    result = reencryptkeys()

    assert result["by_model"]["webhooks.Webhook"] == 1
    assert result["by_model"]["identity.IdentityProvider"] == 1
    assert result["reencrypted"] == sum(result["by_model"].values())
    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40
    webhook.refresh_from_db()
    assert webhook.signing_secrets(timezone.now()) == [previous, secret]
    provider.refresh_from_db()
    assert provider.client_secret == "upstream-client-secret"


def test_without_reencrypting_the_old_signing_keys_cannot_be_read(settings, jwt_a):
    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40
    keys.load_private.cache_clear()

    with pytest.raises(InvalidToken):
        SigningKey.current(jwt_a).private_jwk()


def test_reencryptkeys_refuses_keys_it_cannot_read_and_changes_nothing(settings, jwt_a):
    before = dict(SigningKey.objects.values_list("pk", "private_key_encrypted"))
    Webhook.create(jwt_a, "https://hooks.acme.example/mcpauth", ["grant.revoked"])
    hooks_before = list(Webhook.objects.values_list("secret_encrypted", flat=True))
    settings.KEY_ENCRYPTION_KEY = "new-kek-" + "n" * 40  # the old key not listed

    with pytest.raises(CommandError, match="not encrypted under any key"):
        reencryptkeys()

    assert dict(SigningKey.objects.values_list("pk", "private_key_encrypted")) == before
    assert list(Webhook.objects.values_list("secret_encrypted", flat=True)) == hooks_before


# --- SECRET_KEY ----------------------------------------------------------------------------------

OLD_SECRET, NEW_SECRET = "old-secret-key-" + "o" * 50, "new-secret-key-" + "n" * 50


def test_operators_stay_signed_in_while_the_previous_secret_key_is_a_fallback(client, settings, alice, project_a):
    settings.SECRET_KEY = OLD_SECRET
    client.force_login(alice)
    assert client.get("/projects/alpha/settings").status_code == 200

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, [OLD_SECRET]
    assert client.get("/projects/alpha/settings").status_code == 200

    # Django moved the session to the new key on that request: the fallback can go.
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get("/projects/alpha/settings").status_code == 200


def test_without_the_fallback_operators_sign_in_again(client, settings, alice, project_a):
    settings.SECRET_KEY = OLD_SECRET
    client.force_login(alice)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_SECRET, []

    assert client.get("/projects/alpha/settings").status_code == 302


def test_access_and_refresh_tokens_do_not_depend_on_the_digest_key(client, settings, project_a, public_client_a,
                                                                   end_user_a):
    body = tokens.mint(project_a, project_a.issuer, public_client_a, end_user_a, scopes=["mcp:tools"],
                       audience=["https://mcp.alpha.example/mcp"])
    settings.DIGEST_KEY, settings.DIGEST_KEY_FALLBACKS = NEW, []

    secret = ProjectSecret.issue(project_a, "rs", ["introspect"])[1]  # made under the new key

    answer = post_form(client, "/p/alpha/oauth/introspect", {"token": body["access_token"]},
                       HTTP_AUTHORIZATION=f"Bearer {secret}").json()

    assert answer["active"] is True
