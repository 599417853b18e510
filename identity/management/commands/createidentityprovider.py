from django.core.management.base import CommandError

from identity.manage import ProviderRefused, ProviderSettings, add
from identity.models import Kind
from projects.management.commands._base import JsonCommand


class Command(JsonCommand):
    help = ("Add an upstream identity provider to a project (docs/identity.md); prints the callback URL "
            "to register at the provider.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--kind", required=True, choices=Kind.values)
        parser.add_argument("--name", required=True, help="shown on the sign-in page as `Continue with NAME`")
        parser.add_argument("--client-id", required=True, help="our client id at the provider")
        parser.add_argument("--client-secret", required=True, help="our client secret there (stored encrypted)")
        parser.add_argument("--issuer", default="",
                            help="oidc: the issuer URL (https); microsoft: the tenant (default common)")
        parser.add_argument("--scope", action="append", default=[], dest="scopes",
                            help="an extra scope to ask for (repeatable)")
        parser.add_argument("--domain", action="append", default=[], dest="domains",
                            help="an email domain sent to this provider from the sign-in page (repeatable)")
        parser.add_argument("--existing-accounts-only", action="store_true",
                            help="never create an end user: only people already linked or with a verified email here")

    def handle(self, *args, **options):
        project = self.project(options["project"])
        wanted = ProviderSettings(kind=options["kind"], name=options["name"], client_id=options["client_id"],
                                  client_secret=options["client_secret"], issuer=options["issuer"],
                                  scopes=options["scopes"], domains=options["domains"],
                                  create_accounts=not options["existing_accounts_only"])
        try:
            row = add(project, wanted, actor="cli")
        except ProviderRefused as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        self.emit(options, {"id": row.pk, "callback_url": row.callback_url},
                  f"Added {row.name} to {project.slug} (id {row.pk}). Register this callback URL there: {row.callback_url}")
