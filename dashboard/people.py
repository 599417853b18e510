"""A project's end users (hosted sign-in or vouched for by handoff) and what they granted."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from activity import timeline
from oauth.models import Application

from . import actions
from .decorators import WRITE, project_view


@project_view()
def end_user_list(request, project):
    people = actions.end_users_of(project)
    q = request.GET.get("q", "").strip()
    if q:
        people = people.filter(Q(email__icontains=q) | Q(subject__icontains=q) | Q(name__icontains=q))
    people = people.order_by(F("last_seen_at").desc(nulls_last=True), "-date_joined")
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/end_users.html", {"project": project, "tab": "users", "page": page, "q": q})


@project_view()
def end_user_detail(request, project, pk: int):
    """One end user and the story of each grant they gave (`activity.timeline`)."""
    person = get_object_or_404(project.end_users, pk=pk)
    grants = timeline.grants(project, subject=person.subject) if person.subject else []
    names = dict(Application.objects.filter(project=project, client_id__in={g.client_id for g in grants})
                 .values_list("client_id", "name"))
    for grant in grants:
        grant.client_name = names.get(grant.client_id, "")
    return render(request, "dashboard/end_user_detail.html",
                  {"project": project, "tab": "users", "person": person, "grants": grants})


@project_view(WRITE)
@require_POST
def end_user_revoke(request, project, pk: int):
    person = get_object_or_404(project.end_users, pk=pk)
    count = actions.revoke_end_user(project, person, request)
    messages.success(request, f"Revoked every grant of {person} ({count} live tokens).")
    return redirect("dashboard:end_users", project.slug)
