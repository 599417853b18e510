from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from projects.models import User

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Create an end user of one project (someone who signs in at the project's authorize page)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args, **options):
        project = self.project(options["project"])
        email = options["email"].strip().lower()
        try:
            User._meta.get_field("email").run_validators(email)
            if not email:
                raise ValidationError("an email address is required")
            validate_password(options["password"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if User.objects.filter(project=project, email=email).exists():
            raise CommandError(f"{email} is already an end user of {project.slug}")
        user = User.objects.create_end_user(project, email, options["password"])
        self.emit(options, {"subject": user.subject}, f"End user {user.email} of {project.slug}: subject {user.subject}")
