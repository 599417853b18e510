from projects.models import Project

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Rotate the signing key of one project (or all); the previous key stays published."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", help="project slug (default: every project)")

    def handle(self, *args, **options):
        projects = [self.project(options["project"])] if options["project"] else list(Project.objects.all())
        rotated = {p.slug: p.rotate_signing_key(actor="cli").kid for p in projects}
        self.emit(options, {"rotated": rotated}, "\n".join(f"{s}: new key {k}" for s, k in rotated.items()))
