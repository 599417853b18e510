from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from projects.models import User
from projects.tasks import send_verification

from ._base import JsonCommand


class Command(JsonCommand):
    help = "Create an end user of one project (someone who signs in at the project's authorize page)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--unverified", action="store_true",
                            help="leave the email unverified (by default the operator vouches for it); "
                                 "the person then gets a verification link by email")

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
        if options["unverified"]:
            send_verification.delay(user.pk, project.issuer)
        else:
            User.objects.filter(pk=user.pk).update(email_verified_at=timezone.now())
        self.emit(options, {"subject": user.subject}, f"End user {user.email} of {project.slug}: subject {user.subject}")
