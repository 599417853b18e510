"""A project's audit log, filterable by kind, client and date; kept in PostgreSQL."""

from datetime import date, datetime, time, timedelta

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from projects.models import AuditEvent

from .decorators import project_view


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def filtered_events(project, params):
    events = AuditEvent.objects.filter(project=project)
    chosen = {name: params.get(name, "").strip() for name in ("kind", "client", "since", "until")}
    if chosen["kind"]:
        events = events.filter(kind=chosen["kind"])
    if chosen["client"]:
        events = events.filter(client_id=chosen["client"])
    since, until = _day(chosen["since"]), _day(chosen["until"])
    zone = timezone.get_current_timezone()
    if since:
        events = events.filter(created_at__gte=datetime.combine(since, time.min, zone))
    if until:
        events = events.filter(created_at__lt=datetime.combine(until + timedelta(days=1), time.min, zone))
    return events.order_by("-created_at", "-pk"), chosen


@project_view()
def audit_log(request, project):
    events, chosen = filtered_events(project, request.GET)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    kinds = AuditEvent.objects.filter(project=project).values_list("kind", flat=True).distinct().order_by("kind")
    query = request.GET.copy()
    query.pop("page", None)
    context = {"project": project, "tab": "audit", "page": page, "chosen": chosen, "kinds": list(kinds),
               "query": query.urlencode()}
    return render(request, "dashboard/audit.html", context)
