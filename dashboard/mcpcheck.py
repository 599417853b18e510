"""The project page's "Check an MCP server" form: `oauth.clients.mcp_check` run from the dashboard."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from oauth.clients import mcp_check

from .decorators import project_view

BADGES = {mcp_check.ERROR: "danger", mcp_check.WARNING: "warn", mcp_check.OK: "ok"}
MAX_URL_LENGTH = 2000


@never_cache
@project_view()
@require_http_methods(["GET", "POST"])
def check_mcp(request, project):
    """GET: the form (the default resource filled in). POST: the findings for that URL, checked
    against this project only; fetched through the SSRF-safe wrapper, so a private address is
    refused and no address or fetched body is ever shown."""
    url = (request.POST.get("url") or "").strip() if request.method == "POST" else (project.default_resource or "")
    report = None
    if request.method == "POST":
        if not url or len(url) > MAX_URL_LENGTH:
            report = mcp_check.Report(url=url[:100])
            report.add(mcp_check.ERROR, "Give the MCP server's URL.", "Paste the URL clients use, e.g. https://mcp.example.com/mcp.")
        else:
            report = mcp_check.check(url, project)
    findings = [{"badge": BADGES[f.level], **vars(f)} for f in report.findings] if report else []
    context = {"project": project, "role": request.role, "tab": "overview", "url": url, "report": report,
               "findings": findings}
    return render(request, "dashboard/check_mcp.html", context)
