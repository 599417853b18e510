"""Helpers for the device grant tests (RFC 8628): clients that registered it, the two requests."""

from oauth.models import Application
from tests.token_support import basic, post_form, token_url

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"


def device_client(project, name="Some CLI", *, confidential=False):
    """A client that registered the device grant (and refresh tokens), as open DCR stores one."""
    from projects import secrets

    plain = secrets.generate(secrets.CLIENT_SECRET_PREFIX) if confidential else ""
    client = Application.objects.create(
        project=project, name=name, client_type="confidential" if confidential else "public",
        authorization_grant_type=DEVICE_CODE, redirect_uris="", client_secret=plain,
        registration_path=Application.Path.SECRET if confidential else Application.Path.OPEN,
        metadata={"client_name": name, "grant_types": [DEVICE_CODE, "refresh_token"],
                  "token_endpoint_auth_method": "client_secret_basic" if confidential else "none"},
    )
    client.plain_secret = plain
    return client


def device_authorization_url(project) -> str:
    return f"/p/{project.slug}/oauth/device_authorization"


def start(http, client, **params):
    """POST the device authorization request (RFC 8628 §3.1) as `client`."""
    headers = {}
    data = dict(params)
    if client.client_type == "confidential":
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        data.setdefault("client_id", client.client_id)
    return post_form(http, device_authorization_url(client.project), data, **headers)


def poll(http, client, device_code, *, project=None, **params):
    """One token request of the polling device (RFC 8628 §3.4)."""
    data = {"grant_type": DEVICE_CODE, "device_code": device_code, **params}
    headers = {}
    if client.client_type == "confidential":
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        data["client_id"] = client.client_id
    return post_form(http, token_url(project or client.project), data, **headers)
