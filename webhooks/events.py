"""The events a webhook may subscribe to: one entry each; the dashboard, the API, the CLI and the
docs read this list. `webhook.test` is not subscribable: it goes to the one webhook it tests."""

EVENTS: dict[str, str] = {
    "client.registered": "a client registered (dynamic registration, a CIMD document, the dashboard or API)",
    "client.deleted": "a client deleted (by its registration access token, the dashboard or API)",
    "grant.created": "an end user allowed a client for the first time",
    "grant.revoked": "a grant's tokens were revoked (RFC 7009, refresh reuse, code replay, dashboard or API)",
    "token.reuse_detected": "a spent refresh token was presented again; its grant was revoked",
    "secret.created": "a project secret was created",
    "secret.revoked": "a project secret was revoked",
    "member.changed": "a project member was added, removed or changed role",
    "settings.changed": "the project's settings changed",
}
TEST_EVENT = "webhook.test"


def unknown(names: list[str]) -> list[str]:
    return [name for name in names if name not in EVENTS]
