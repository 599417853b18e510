"""Helpers for the authorization tests: PKCE pairs, authorize URLs, end-user sessions, parsed redirects."""

import base64
import hashlib
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from django.utils import timezone

from oauth.models import Application

LOOPBACK_REDIRECT = "http://127.0.0.1:53123/callback"  # registered as http://127.0.0.1/callback: any port
CIMD_CLIENT_ID = "https://app.cimd.example/oauth/client.json"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


VERIFIER, CHALLENGE = pkce_pair()


def authorize_path(project, client, **params) -> str:
    """`/p/{slug}/oauth/authorize?…` with a valid request; a param set to None is left out."""
    query = {
        "response_type": "code", "client_id": client.client_id, "redirect_uri": LOOPBACK_REDIRECT,
        "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "st-123",
    }
    query.update(params)
    return f"/p/{project.slug}/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


def sign_in_as(http_client, user) -> None:
    """What oauth.endpoints.signin does for an end user: their pk under their project's session key."""
    session = http_client.session
    session[f"enduser:{user.project_id}"] = user.pk
    session[f"enduser-hash:{user.project_id}"] = user.get_session_auth_hash()
    session.save()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def first_party_client(project) -> Application:
    return Application.objects.create(
        project=project, name="First-party app", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="http://127.0.0.1/callback",
        registration_path=Application.Path.SECRET, first_party=True,
        metadata={"client_name": "First-party app", "grant_types": ["authorization_code", "refresh_token"]},
    )


def cimd_client(project) -> Application:
    """A CIMD client as oauth.clients.cimd leaves it after a fetch (fresh, so no refetch happens here)."""
    return Application.objects.create(
        project=project, client_id=CIMD_CLIENT_ID, name="Cimd Desktop", client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE, redirect_uris="http://127.0.0.1/callback",
        registration_path=Application.Path.CIMD, registration_source=Application.RegistrationSource.CIMD,
        cimd_expires_at=timezone.now() + timedelta(hours=1),
        metadata={"client_name": "Cimd Desktop", "grant_types": ["authorization_code", "refresh_token"]},
    )
