from django.core.management.base import CommandError
from django.db import transaction

from activity import record as activity
from oauth import grants
from oauth.clients import metadata as client_metadata
from oauth.endpoints.registration import new_client_secret
from oauth.errors import OAuthError
from oauth.models import Application
from projects.management.commands._base import JsonCommand
from projects.models import AuditEvent

# Every grant an operator may give (oauth.grants) beyond the code flow's, which --redirect-uri implies.
EXTRA_GRANTS = [g.grant_type for g in grants.on_path("dashboard") if g.grant_type not in client_metadata.DEFAULT_GRANT_TYPES]


class Command(JsonCommand):
    help = "Create a pre-registered client (the dashboard's way in); prints its secret once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--name", required=True, help="client name shown on the consent page")
        parser.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris",
                            help="a redirect URI (repeat for more)")
        parser.add_argument("--confidential", action="store_true", help="issue a client secret")
        parser.add_argument("--first-party", action="store_true", help="skip the consent screen")
        parser.add_argument("--grant", action="append", default=[], choices=EXTRA_GRANTS,
                            help="an extra grant type (one only confidential clients may hold implies --confidential)")
        parser.add_argument("--scope", default=None, help="space-separated scopes (default: the whole catalog)")

    def handle(self, *args, **options):
        project = self.project(options["project"])
        confidential = options["confidential"] or any(grants.find(g).confidential for g in options["grant"])
        chosen = (list(client_metadata.DEFAULT_GRANT_TYPES) if options["redirect_uris"] else []) + options["grant"]
        if not chosen:
            raise CommandError("give at least one --redirect-uri, or --grant client_credentials")
        requested = {
            "client_name": options["name"], "redirect_uris": options["redirect_uris"], "grant_types": chosen,
            "token_endpoint_auth_method": "client_secret_basic" if confidential else "none",
            "first_party": options["first_party"], "scope": options["scope"],
        }
        try:
            cleaned = client_metadata.validate(requested, project, Application.Path.DASHBOARD)
        except OAuthError as exc:
            raise CommandError(f"{exc.error}: {exc.description}") from None
        # A grant or auth method the operator asked for explicitly is refused rather than dropped; a
        # redirect URI that cannot be registered is left out and said so (below), as for DCR.
        refused = {name: items for name, items in cleaned.narrowed.items() if name != "redirect_uris"}
        if refused:
            dropped = "; ".join(f"{name} {item['value']}: {item['reason']}"
                                for name, items in refused.items() for item in items)
            raise CommandError(f"invalid_client_metadata: {dropped}")
        client = Application(project=project, registration_path=Application.Path.DASHBOARD)
        cleaned.apply_to(client)
        secret = new_client_secret(client) if cleaned.confidential else None
        with transaction.atomic():
            client.save()
            AuditEvent.record(project, "client.registered", actor="createclient", client_id=client.client_id,
                              path=Application.Path.DASHBOARD, **({"dropped": cleaned.narrowed} if cleaned.narrowed else {}))
            activity.record(project, activity.REGISTERED, "cli", client_id=client.client_id)
        for dropped in cleaned.narrowed.get("redirect_uris", []):
            self.stderr.write(f"redirect URI {dropped['value']} left out: it {dropped['reason']}")
        payload = {"client_id": client.client_id, **({"client_secret": secret} if secret else {})}
        human = f"Client {client.client_id}" + (f" (secret, shown once: {secret})" if secret else "")
        self.emit(options, payload, human)
