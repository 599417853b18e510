"""A project's end users (hosted sign-in or vouched for by handoff) and what they granted."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import actions
from .decorators import WRITE, project_view


@project_view()
def end_user_list(request, project):
    people = actions.end_users_of(project)
    q = request.GET.get("q", "").strip()
    if q:
        people = people.filter(Q(email__icontains=q) | Q(subject__icontains=q) | Q(name__icontains=q))
    people = people.order_by(F("last_seen_at").desc(nulls_last=True), "-date_joined").prefetch_related(
        "upstream_identities__provider")
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/end_users.html", {"project": project, "tab": "users", "page": page, "q": q})


@project_view(WRITE)
@require_POST
def end_user_revoke(request, project, pk: int):
    person = get_object_or_404(project.end_users, pk=pk)
    count = actions.revoke_end_user(project, person, request)
    messages.success(request, f"Revoked every grant of {person} ({count} live tokens).")
    return redirect("dashboard:end_users", project.slug)
