from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.validators import URLValidator, validate_slug

from projects.models import Project, User

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Create a project (one issuer) owned by an operator; prints its registration secret once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--owner", required=True, help="operator email")
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--resource", action="append", default=[], help="protected MCP server URL; first is default")
        parser.add_argument("--scope", action="append", default=[], help="scope name for the catalog")
        parser.add_argument("--login-mode", choices=[c.value for c in Project.LoginMode], default="hosted")
        parser.add_argument("--login-url", default="")

    def handle(self, *args, **options):
        owner = User.objects.filter(username=options["owner"].strip().lower(), project__isnull=True).first()
        if owner is None:
            raise CommandError(f"no operator {options['owner']}")
        try:
            validate_slug(options["slug"])
            for url in options["resource"] + ([options["login_url"]] if options["login_url"] else []):
                URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if options["login_mode"] == "handoff" and not options["login_url"]:
            raise CommandError("--login-mode handoff needs --login-url")
        if Project.objects.filter(slug=options["slug"]).exists():
            raise CommandError(f"a project with slug {options['slug']!r} already exists")
        project, secret = Project.objects.create_project(
            owner=owner, name=options["name"], slug=options["slug"], resources=options["resource"],
            scopes=options["scope"], login_mode=options["login_mode"], login_url=options["login_url"],
        )
        payload = {
            "slug": project.slug,
            "issuer": project.issuer,
            "registration_secret": secret,
            "resources": project.resources,
            "scopes": project.scope_names,
        }
        self.emit(options, payload, f"Project {project.slug}: issuer {project.issuer}\nRegistration secret (shown once): {secret}")
