from django.apps import AppConfig


class ActivityConfig(AppConfig):
    name = "activity"

    def ready(self) -> None:
        from infra import observe

        from . import record

        observe.on_refusal(record.refusal)  # every refused OAuth request, counted once, by the middleware
