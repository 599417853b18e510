"""Shared shape of the operator commands: `--json` prints one JSON object, errors exit non-zero."""

import json

from django.core.management.base import BaseCommand, CommandError

from projects.models import Project


class JsonCommand(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    def emit(self, options, payload: dict, human: str) -> None:
        self.stdout.write(json.dumps(payload) if options["json"] else human)

    @staticmethod
    def project(slug: str) -> Project:
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"no project with slug {slug!r}")
        return project
