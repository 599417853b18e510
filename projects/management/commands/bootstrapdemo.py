"""Idempotently create the demo operator, project and end user used by `make run`, and print how to use them.

Secrets are stored hashed, so the demo's plaintext credentials are kept in var/demo.json
(git-ignored, local only) the first time and re-printed from there afterwards.
"""

import json
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from projects.models import Project, ProjectSecret, User

from ._base import JsonCommand

DEMO_EMAIL = "demo@example.com"
# Someone who signs in on the demo project's hosted sign-in page (an end user, not an operator).
DEMO_END_USER = "user@example.com"


def mail_destination() -> str:
    """Where verification and reset emails go: the folder (no EMAIL_URL) or the SMTP server."""
    if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
        return f"written to {settings.EMAIL_FILE_PATH} (set EMAIL_URL to send them)"
    if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
        return f"sent through {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    return f"handled by {settings.EMAIL_BACKEND}"


class Command(JsonCommand):
    help = "Create (once) a demo operator, project and end user, then print the URLs and credentials."

    @transaction.atomic
    def handle(self, *args, **options):
        path = settings.VAR_DIR / "demo.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        operator = User.objects.filter(username=DEMO_EMAIL, project__isnull=True).first()
        if operator is None or not operator.check_password(saved.get("password", "")):
            saved["password"] = secrets.token_urlsafe(12)
            if operator is None:
                operator = User.objects.create_operator(DEMO_EMAIL, saved["password"])
            else:
                operator.set_password(saved["password"])
                operator.save(update_fields=["password"])
        project = Project.objects.filter(slug="demo").first()
        if project is None:
            project, saved["registration_secret"] = Project.objects.create_project(
                owner=operator, name="Demo MCP server", slug="demo", resources=["http://127.0.0.1:8001/mcp"],
            )
        elif not ProjectSecret.authenticate(project, saved.get("registration_secret", ""), "register"):
            _, saved["registration_secret"] = ProjectSecret.issue(project, "Demo registration secret",
                                                                   list(ProjectSecret.PERMISSIONS), created_by=operator)
        end_user = User.objects.filter(project=project, email=DEMO_END_USER).first()
        if end_user is None or not end_user.check_password(saved.get("end_user_password", "")):
            saved["end_user_password"] = secrets.token_urlsafe(12)
            if end_user is None:
                end_user = User.objects.create_end_user(project, DEMO_END_USER, saved["end_user_password"])
                User.objects.filter(pk=end_user.pk).update(email_verified_at=timezone.now())  # vouched for
            else:
                end_user.set_password(saved["end_user_password"])
                end_user.save(update_fields=["password"])
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        payload = {
            "dashboard": f"{settings.PUBLIC_URL}/",
            "email": DEMO_EMAIL,
            "password": saved["password"],
            "issuer": project.issuer,
            "registration_secret": saved["registration_secret"],
            "end_user_email": DEMO_END_USER,
            "end_user_password": saved["end_user_password"],
            "mail": mail_destination(),
        }
        human = "\n".join([
            "",
            "  mcpauth is ready.",
            f"  Dashboard:            {payload['dashboard']}",
            f"  Operator login:       {DEMO_EMAIL} / {saved['password']}",
            f"  Demo issuer:          {project.issuer}",
            f"  Discovery:            {settings.PUBLIC_URL}/.well-known/oauth-authorization-server/p/demo",
            f"  Registration secret:  {saved['registration_secret']}",
            f"  End user sign-in:     {DEMO_END_USER} / {saved['end_user_password']}"
            "  (the demo issuer's hosted sign-in page)",
            f"  Emails:               {payload['mail']}",
            "",
        ])
        self.emit(options, payload, human)
