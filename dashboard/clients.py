"""A project's OAuth clients: list (search, filters, repeats grouped), detail, revoke, disable, delete;
and how clients tried to get in: recent CIMD fetches and registration refusals."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from activity import timeline
from oauth.models import Application, RegistrationNote
from projects.models import AuditEvent

from . import actions
from .decorators import WRITE, project_view
from .forms import ClientForm

USED_WITHIN = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
GROUP_SCAN_LIMIT = 2000  # newest clients considered when grouping repeats on one page


@dataclass
class ClientGroup:
    """Identical registrations (same fingerprint) shown as one row."""

    first: Application
    members: list[Application] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def live_tokens(self) -> int:
        return sum(c.live_tokens for c in self.members)

    @property
    def last_used_at(self) -> datetime | None:
        return max((c.last_used_at for c in self.members if c.last_used_at), default=None)


def group_repeats(clients) -> list[ClientGroup]:
    groups: dict[str, ClientGroup] = {}
    ordered: list[ClientGroup] = []
    for client in clients:
        key = client.fingerprint or f"pk:{client.pk}"
        if key not in groups:
            groups[key] = ClientGroup(first=client)
            ordered.append(groups[key])
        groups[key].members.append(client)
    return ordered


def filtered_clients(project, params) -> tuple[QuerySet, dict]:
    clients = actions.clients_of(project)
    names = ("q", "path", "software", "status", "used", "live", "fingerprint")
    chosen = {name: params.get(name, "").strip() for name in names}
    if chosen["q"]:
        clients = clients.filter(Q(name__icontains=chosen["q"]) | Q(client_id__icontains=chosen["q"]))
    if chosen["path"] in Application.Path.values:
        clients = clients.filter(registration_path=chosen["path"])
    if chosen["software"]:
        clients = clients.filter(metadata__software_id=chosen["software"])
    if chosen["status"] == "active":
        clients = clients.filter(disabled_at__isnull=True)
    elif chosen["status"] == "disabled":
        clients = clients.filter(disabled_at__isnull=False)
    if chosen["used"] == "never":
        clients = clients.filter(last_used_at__isnull=True)
    elif chosen["used"] in USED_WITHIN:
        clients = clients.filter(last_used_at__gte=timezone.now() - USED_WITHIN[chosen["used"]])
    if chosen["live"] == "yes":
        clients = clients.filter(live_tokens__gt=0)
    elif chosen["live"] == "no":
        clients = clients.filter(live_tokens=0)
    if chosen["fingerprint"]:
        clients = clients.filter(fingerprint=chosen["fingerprint"])
    return clients.order_by(F("last_used_at").desc(nulls_last=True), "-created"), chosen


@project_view()
def client_list(request, project):
    clients, chosen = filtered_clients(project, request.GET)
    if chosen["fingerprint"]:
        groups = [ClientGroup(first=c, members=[c]) for c in clients[:GROUP_SCAN_LIMIT]]
    else:
        groups = group_repeats(clients[:GROUP_SCAN_LIMIT])
    page = Paginator(groups, 50).get_page(request.GET.get("page"))
    software = (
        Application.objects.filter(project=project).exclude(metadata__software_id=None)
        .values_list("metadata__software_id", flat=True).distinct()[:50]
    )
    context = {"project": project, "tab": "clients", "page": page, "chosen": chosen,
               "paths": Application.Path.choices, "software_ids": sorted(s for s in software if s),
               "total": clients.count()}
    return render(request, "dashboard/clients.html", context)


def _client(project, pk: int) -> Application:
    return get_object_or_404(actions.clients_of(project), pk=pk)


@project_view()
def client_detail(request, project, pk: int):
    client = _client(project, pk)
    grants = client.metadata.get("grant_types") or [client.authorization_grant_type]
    context = {
        "project": project, "tab": "clients", "client": client, "grants": grants,
        "redirect_uris": client.redirect_uris.split(),
        "metadata_json": json.dumps(client.metadata, indent=2, sort_keys=True),
        "narrowed": [(name, item) for name, items in (client.narrowed or {}).items() for item in items],
        "repeats": Application.objects.filter(project=project, fingerprint=client.fingerprint).count()
        if client.fingerprint else 1,
        "events": AuditEvent.objects.filter(project=project, client_id=client.client_id).order_by("-created_at")[:20],
        "timelines": _with_people(project, timeline.grants(project, client_id=client.client_id)),
    }
    return render(request, "dashboard/client_detail.html", context)


def _with_people(project, grants: list) -> list:
    """Each grant with its end user's email (or name) for the page."""
    people = {subject: email or name for subject, email, name in project.end_users.filter(
        subject__in={g.subject for g in grants}).values_list("subject", "email", "name")}
    for grant in grants:
        grant.person = people.get(grant.subject, "")
    return grants


@project_view()
def client_registrations(request, project):
    """The newest CIMD fetches and registration refusals, with their reasons (RegistrationNote)."""
    context = {"project": project, "tab": "clients", "keep": RegistrationNote.KEEP,
               "fetches": RegistrationNote.recent(project, RegistrationNote.Kind.CIMD_FETCH),
               "refusals": RegistrationNote.recent(project, RegistrationNote.Kind.REFUSAL)}
    return render(request, "dashboard/client_registrations.html", context)


@project_view(WRITE)
@require_POST
def client_revoke_tokens(request, project, pk: int):
    client = _client(project, pk)
    count = actions.revoke_client_tokens(project, client, request)
    messages.success(request, f"Revoked all tokens of {client.name or client.client_id} ({count} live).")
    return redirect("dashboard:client", project.slug, client.pk)


@project_view(WRITE)
@require_POST
def client_disable(request, project, pk: int):
    client = _client(project, pk)
    disable = request.POST.get("disabled", "1") == "1"
    actions.set_client_disabled(project, client, disable, request)
    messages.success(request, f"{client.name or client.client_id} is {'disabled' if disable else 'enabled again'}.")
    return redirect("dashboard:client", project.slug, client.pk)


@project_view(WRITE)
@require_POST
def client_delete(request, project, pk: int):
    client = _client(project, pk)
    label = client.name or client.client_id
    actions.delete_client(project, client, request)
    messages.success(request, f"Deleted {label}. It must register again to get new tokens.")
    return redirect("dashboard:clients", project.slug)


@never_cache
@project_view(WRITE)
@require_http_methods(["GET", "POST"])
def client_new(request, project):
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        client, secret = actions.create_client(project, request, **form.cleaned_data)
        return render(request, "dashboard/client_created.html",
                      {"project": project, "tab": "clients", "client": client, "secret": secret})
    return render(request, "dashboard/client_new.html", {"project": project, "tab": "clients", "form": form},
                  status=400 if form.errors else 200)
