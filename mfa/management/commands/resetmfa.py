"""Remove every second factor of an operator who lost them all (docs/operators.md, "Lost every factor")."""

from django.core.management.base import BaseCommand, CommandError

from mfa import factors
from projects.models import AuditEvent, User


class Command(BaseCommand):
    help = ("Remove an operator's TOTP devices, passkeys and recovery codes, so that they sign in with their "
            "password alone and enrol again. Check who is asking first: this undoes their second factor.")

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True, help="the operator's email")

    def handle(self, *args, **options):
        email = options["email"].strip().lower()
        user = User.objects.filter(username=email, project__isnull=True).first()
        if user is None:
            raise CommandError(f"no operator {email}")
        removed = factors.remove_all(user)
        AuditEvent.record(None, "operator.mfa_reset", actor="manage.py resetmfa", member=user.email, removed=removed)
        self.stdout.write(f"Removed the second factors and recovery codes of {user.email} ({removed} rows). "
                          "They sign in with their password alone until they enrol again.")
