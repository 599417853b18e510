from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "oauth"
    label = "oauth"

    def ready(self) -> None:
        from oauth import signals
        from oauth.clients import lookup  # noqa: F401 - connects the client cache's save/delete receivers

        signals.connect()
