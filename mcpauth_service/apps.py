from django.apps import AppConfig


class McpauthServiceConfig(AppConfig):
    name = "mcpauth_service"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
