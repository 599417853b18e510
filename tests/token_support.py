"""Helpers for the token tests: PKCE pairs, codes made directly as Grant rows, form posts."""

import base64
import hashlib
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.utils import timezone

from oauth.models import Grant

REDIRECT_URI = "http://127.0.0.1/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def make_code(client, user, *, scope="mcp:tools offline_access", resource=None, redirect_uri=None,
              expires_in=60) -> tuple[str, str]:
    """A fresh authorization code for `client`/`user` as the authorize endpoint would store it: (code, verifier)."""
    verifier, challenge = pkce()
    code = secrets.token_urlsafe(32)
    Grant.objects.create(
        application=client, user=user, code=code, expires=timezone.now() + timedelta(seconds=expires_in),
        redirect_uri=redirect_uri or client.redirect_uris.split()[0], scope=scope,
        code_challenge=challenge, code_challenge_method="S256",
        resource=[client.project.default_resource] if resource is None else resource,
    )
    return code, verifier


def basic(client, secret=None) -> str:
    raw = f"{client.client_id}:{secret if secret is not None else client.plain_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def post_form(http, url: str, data, **headers):
    """POST application/x-www-form-urlencoded (a list of pairs keeps repeated parameters)."""
    return http.post(url, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded", **headers)


def token_url(project) -> str:
    return f"/p/{project.slug}/oauth/token"


def redeem(http, client, code, verifier, *, secret=True, **params):
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": client.redirect_uris.split()[0], **params}
    headers = {}
    if client.client_type == "confidential" and secret:
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        data["client_id"] = client.client_id
    return post_form(http, token_url(client.project), data, **headers)


def refresh(http, client, refresh_token, **params):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **params}
    headers = {}
    if client.client_type == "confidential":
        headers["HTTP_AUTHORIZATION"] = basic(client)
    else:
        data["client_id"] = client.client_id
    return post_form(http, token_url(client.project), data, **headers)


def introspect(http, project, token, secret):
    return post_form(http, f"/p/{project.slug}/oauth/introspect", {"token": token},
                     HTTP_AUTHORIZATION=f"Bearer {secret}")
