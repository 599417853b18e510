"""GitHub OAuth apps: authorize, token, `GET /user`, `GET /user/emails` (GitHub's REST API docs).

GitHub has no ID token: the person is `GET /user`'s numeric `id` (logins can be renamed), and their
email the primary one of `GET /user/emails`, verified only when GitHub says `verified: true`.
"""

from django.conf import settings

from identity.http import get_json
from identity.providers.base import Leg, Profile, Provider, UpstreamRefused


class GitHub(Provider):
    kind = "github"
    scopes = ("read:user", "user:email")
    token_endpoint_auth_method = "client_secret_post"  # GitHub's documented client_id + client_secret

    @staticmethod
    def endpoints() -> dict[str, str]:
        return settings.IDENTITY_UPSTREAMS["github"]

    def authorization_endpoint(self) -> str:
        return self.endpoints()["authorize"]

    def token_endpoint(self) -> str:
        return self.endpoints()["token"]

    def profile(self, token: dict, leg: Leg) -> Profile:
        headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28"}
        api = self.endpoints()["api"]
        user = get_json(f"{api}/user", headers)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            raise UpstreamRefused("GET /user without a numeric id")
        emails = get_json(f"{api}/user/emails", headers)
        primary = next((e for e in emails if isinstance(e, dict) and e.get("primary") is True), None) \
            if isinstance(emails, list) else None
        email = str(primary.get("email") or "") if primary else ""
        return Profile(subject=str(user["id"]), email=email, email_verified=bool(primary and primary.get("verified") is True),
                       name=str(user.get("name") or user.get("login") or ""),
                       claims={"user": {k: user.get(k) for k in ("id", "login", "name", "email")}, "emails": emails})
