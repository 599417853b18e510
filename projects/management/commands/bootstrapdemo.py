"""Idempotently create the demo operator and project used by `make run`, and print how to use them.

Secrets are stored hashed, so the demo's plaintext credentials are kept in var/demo.json
(git-ignored, local only) the first time and re-printed from there afterwards.
"""

import json
import secrets

from django.conf import settings
from django.db import transaction

from projects.models import Project, ProjectSecret, User

from ._base import JsonCommand

DEMO_EMAIL = "demo@example.com"


class Command(JsonCommand):
    help = "Create (once) a demo operator and project, then print the URLs and credentials."

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
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        payload = {
            "dashboard": f"{settings.PUBLIC_URL}/",
            "email": DEMO_EMAIL,
            "password": saved["password"],
            "issuer": project.issuer,
            "registration_secret": saved["registration_secret"],
        }
        human = "\n".join([
            "",
            "  mcpauth is ready.",
            f"  Dashboard:            {payload['dashboard']}",
            f"  Operator login:       {DEMO_EMAIL} / {saved['password']}",
            f"  Demo issuer:          {project.issuer}",
            f"  Discovery:            {settings.PUBLIC_URL}/.well-known/oauth-authorization-server/p/demo",
            f"  Registration secret:  {saved['registration_secret']}",
            "",
        ])
        self.emit(options, payload, human)
