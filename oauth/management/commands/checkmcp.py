from django.core.management.base import CommandError

from oauth.clients import mcp_check
from projects.management.commands._base import JsonCommand

LABELS = {mcp_check.ERROR: "ERROR  ", mcp_check.WARNING: "WARNING", mcp_check.OK: "ok     "}


class Command(JsonCommand):
    help = ("Check an MCP server as a careful MCP client would: its 401, its protected-resource metadata "
            "(RFC 9728) and this project's issuer metadata; exits non-zero when something must be fixed.")

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("url", help="the MCP server's URL, as clients use it")
        parser.add_argument("--project", help="project slug (default: the project whose issuer the server names)")

    def handle(self, *args, **options):
        project = self.project(options["project"]) if options["project"] else None
        report = mcp_check.check(options["url"], project)
        self.emit(options, report.as_dict(), self.human(report))
        if not report.ok:
            raise CommandError("the MCP server's authorization setup has errors (see above)", returncode=1)

    @staticmethod
    def human(report: mcp_check.Report) -> str:
        lines = [f"Checking {report.url}" + (f" against project {report.project.slug}" if report.project else "")]
        for finding in report.findings:
            lines.append(f"{LABELS[finding.level]} {finding.message}")
            if finding.fix:
                lines.append(f"        fix: {finding.fix}")
        lines.append("OK" if report.ok else "Errors found.")
        return "\n".join(lines)
