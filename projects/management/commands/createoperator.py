from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from projects.models import User

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Create an operator account (a person who signs in to the dashboard)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args, **options):
        email = options["email"].strip().lower()
        if User.objects.filter(username=email, project__isnull=True).exists():
            raise CommandError(f"operator {email} already exists")
        try:
            validate_password(options["password"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        user = User.objects.create_operator(email, options["password"])
        self.emit(options, {"email": user.email, "id": user.pk}, f"Operator {user.email} created.")
