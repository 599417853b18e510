"""Client secrets are stored under the fast keyed hasher, never in plaintext, never PBKDF2."""

from django.contrib.auth.hashers import check_password

from oauth.models import Application


def test_a_client_secret_is_stored_as_a_keyed_digest_and_verifies(project_a):
    client = Application.objects.create(project=project_a, name="backend", client_type="confidential",
                                        authorization_grant_type="client-credentials", client_secret="s3cret-value")
    stored = Application.objects.filter(pk=client.pk).values_list("client_secret", flat=True).get()
    assert stored.startswith("mcpauth_hmac$") and "s3cret-value" not in stored
    assert check_password("s3cret-value", stored)
    assert not check_password("s3cret-valuX", stored)
