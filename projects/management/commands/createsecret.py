from django.core.management.base import CommandError

from projects.models import ProjectSecret

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Create a project secret with the given permissions; prints it once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--permissions", required=True, help="comma-separated: " + ",".join(ProjectSecret.PERMISSIONS))

    def handle(self, *args, **options):
        project = self.project(options["project"])
        permissions = [p.strip() for p in options["permissions"].split(",") if p.strip()]
        try:
            row, secret = ProjectSecret.issue(project, options["name"], permissions)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.emit(options, {"secret": secret, "name": row.name, "permissions": row.permissions},
                  f"Secret {row.name} (shown once): {secret}")
