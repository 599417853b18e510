import json

from django.core.management.base import CommandError
from django.db import models

from dashboard import policy
from dashboard.api import ProjectSerializer
from projects.management.commands._base import JsonCommand
from projects.models import Project

BOOLEAN_WORDS = {"true": True, "on": True, "yes": True, "1": True, "false": False, "off": False, "no": False,
                 "0": False}


class Command(JsonCommand):
    help = ("Change a project's settings, validated as the dashboard and the management API validate them; "
            "prints the project's settings.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("slug", help="project slug")
        parser.add_argument("--set", action="append", default=[], dest="assignments", metavar="KEY=VALUE",
                            help=f"one setting (repeat for more): {', '.join(policy.SETTINGS)}; a rate limit as "
                                 "rate_limits.NAME=10/15m (empty for its default)")

    def handle(self, *args, **options):
        project = self.project(options["slug"])
        patch = parse_assignments(options["assignments"])
        try:
            changed = policy.change_settings(project, patch, actor="manage.py setproject")
        except policy.InvalidSettings as exc:
            raise CommandError("\n".join(f"{key}: {' '.join(messages)}" for key, messages in exc.errors.items())) from None
        settings = dict(ProjectSerializer(project).data)
        self.emit(options, settings, json.dumps(settings, indent=2) + f"\nchanged: {', '.join(changed) or 'nothing'}")


def parse_assignments(assignments: list[str]) -> dict:
    """`key=value` words as the JSON patch the management API takes; unknown keys refused."""
    patch: dict = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep:
            raise CommandError(f"--set {assignment!r}: write KEY=VALUE")
        if key.startswith("rate_limits."):
            patch.setdefault("rate_limits", {})[key.removeprefix("rate_limits.")] = value.strip()
        elif key not in policy.SETTINGS:
            raise CommandError(f"unknown setting {key!r}; settings: {', '.join(policy.SETTINGS)}")
        else:
            patch[key] = parse_value(key, value)
    return patch


def parse_value(key: str, value: str):
    if key in ("resources", "scopes", "rate_limits"):
        if value.strip().startswith(("[", "{")):
            try:
                return json.loads(value)
            except ValueError:
                raise CommandError(f"{key}: not valid JSON") from None
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(Project._meta.get_field(key), models.BooleanField):
        return BOOLEAN_WORDS.get(value.strip().lower(), value)  # anything else: refused by the validation
    return value
