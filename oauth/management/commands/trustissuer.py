import json
from pathlib import Path

from django.core.management.base import CommandError

from oauth.trusted_issuers import IssuerRefused, IssuerSettings, trust
from projects.management.commands._base import JsonCommand


class Command(JsonCommand):
    help = ("Trust an enterprise identity provider's ID-JAGs (RFC 7523 jwt-bearer grant) for a project. "
            "Keys come from an https --jwks-uri or an inline --jwks-file.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--issuer", required=True, help="the identity provider's issuer URL (its ID-JAGs' iss)")
        keys = parser.add_mutually_exclusive_group(required=True)
        keys.add_argument("--jwks-uri", help="https URL of the identity provider's JWK Set")
        keys.add_argument("--jwks-file", help="a file holding its JWK Set (stored inline)")
        parser.add_argument("--client", action="append", default=[], dest="clients",
                            help="a client_id that may present its assertions (repeatable; default: any)")
        parser.add_argument("--scope", action="append", default=[], dest="scopes",
                            help="a scope it may grant (repeatable; default: what clients get by default)")
        parser.add_argument("--alg", action="append", default=[], dest="algorithms",
                            help="an accepted signing algorithm (repeatable; default: RS256 and ES256)")
        parser.add_argument("--provision", action="store_true",
                            help="create an end user for a person with no account (else they are refused)")
        parser.add_argument("--refresh-tokens", action="store_true", help="also issue refresh tokens")

    def handle(self, *args, **options):
        project = self.project(options["project"])
        wanted = IssuerSettings(issuer=options["issuer"], jwks_uri=options["jwks_uri"] or "",
                                jwks=self.read_jwks(options["jwks_file"]), client_ids=options["clients"],
                                scopes=options["scopes"], algorithms=options["algorithms"],
                                provision=options["provision"], refresh_tokens=options["refresh_tokens"])
        try:
            row = trust(project, wanted, actor="cli")
        except IssuerRefused as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        self.emit(options, {"id": row.pk}, f"Project {project.slug} now trusts {row.issuer} (id {row.pk}).")

    @staticmethod
    def read_jwks(path: str | None) -> dict | None:
        if not path:
            return None
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"--jwks-file: cannot read a JSON JWK Set ({exc.__class__.__name__})") from None
