from django.core.management.base import CommandError

from projects.management.commands._base import JsonCommand
from webhooks import changes
from webhooks.events import EVENTS


class Command(JsonCommand):
    help = "Create a signed webhook (Standard Webhooks) for a project; prints its secret once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--url", required=True, help="https URL of the receiver")
        parser.add_argument("--events", required=True, help="comma-separated: " + ",".join(EVENTS))

    def handle(self, *args, **options):
        project = self.project(options["project"])
        events = [e.strip() for e in options["events"].split(",") if e.strip()]
        try:
            webhook, secret = changes.create(project, options["url"], events, actor="cli")
        except changes.Refused as exc:
            raise CommandError(str(exc)) from None
        self.emit(options, {"id": webhook.pk, "secret": secret},
                  f"Webhook {webhook.pk} for {webhook.url} (secret, shown once): {secret}")
