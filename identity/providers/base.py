"""What every upstream provider does: send the person there, and turn the answer into a Profile."""

from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.client import OAuth2Client

from identity.http import Session
from identity.models import IdentityProvider


class UpstreamRefused(Exception):
    """The upstream's answer fails a check (token, ID token, profile). The message is for logs only."""


@dataclass
class Profile:
    """Who the upstream says signed in: `subject` is the key; the email links only when verified."""

    subject: str
    email: str = ""
    email_verified: bool = False
    name: str = ""
    claims: dict[str, Any] = field(default_factory=dict)  # what came back, for the dashboard's test sign-in


@dataclass
class Leg:
    """One round trip's secrets, kept server side under `state` (identity.state)."""

    state: str
    nonce: str
    code_verifier: str


class Provider:
    """An upstream kind. Subclasses set `kind` and `scopes`, and say where to go and how to read the answer."""

    kind = ""
    scopes: tuple[str, ...] = ()
    token_endpoint_auth_method = "client_secret_basic"

    def __init__(self, row: IdentityProvider):
        self.row = row

    def client(self, redirect_uri: str) -> OAuth2Client:
        """Authlib's OAuth 2 client for this row, talking through infra.outbound."""
        scope = " ".join(dict.fromkeys([*self.scopes, *self.row.scopes]))
        return OAuth2Client(Session(), client_id=self.row.client_id, client_secret=self.row.client_secret,
                            token_endpoint_auth_method=self.token_endpoint_auth_method, scope=scope,
                            redirect_uri=redirect_uri, code_challenge_method="S256")

    def authorization_url(self, leg: Leg, redirect_uri: str) -> str:
        """The upstream's authorization URL: PKCE S256, our `state` (and `nonce` where there is an
        ID token). Nothing of our own client's request (its `prompt`, `max_age`) is passed on."""
        url, _ = self.client(redirect_uri).create_authorization_url(
            self.authorization_endpoint(), state=leg.state, code_verifier=leg.code_verifier, **self.extra_params(leg))
        return url

    def extra_params(self, leg: Leg) -> dict[str, str]:
        return {}

    def check_issuer_parameter(self, iss: str | None) -> None:
        """RFC 9207 §2.4: an `iss` in the authorization response must be the upstream's issuer."""

    def fetch_token(self, code: str, leg: Leg, redirect_uri: str) -> dict:
        token = self.client(redirect_uri).fetch_token(self.token_endpoint(), grant_type="authorization_code",
                                                      code=code, code_verifier=leg.code_verifier)
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
            raise UpstreamRefused("token response without an access_token")
        return dict(token)

    def authorization_endpoint(self) -> str:
        raise NotImplementedError

    def token_endpoint(self) -> str:
        raise NotImplementedError

    def profile(self, token: dict, leg: Leg) -> Profile:
        """The person, from the token response (and the upstream's APIs)."""
        raise NotImplementedError
