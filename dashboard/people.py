"""A project's end users (hosted sign-in or vouched for by handoff) and what they granted."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from activity import timeline
from infra import ratelimit
from infra.ratelimit import RateLimited
from oauth.models import Application
from projects import accounts, tasks
from projects.models import AuditEvent

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


@project_view(WRITE)
@require_POST
def end_user_send_verification(request, project, pk: int):
    """Send the person a verification link (again), within the same limit as their own resends."""
    person = get_object_or_404(project.end_users.exclude(email=""), pk=pk, email_verified_at__isnull=True)
    try:
        ratelimit.hit(accounts.resend_check(project, person))
    except RateLimited as refused:
        messages.error(request, f"Several links were sent to {person} already; try again in {refused.retry_after} s.")
        return redirect("dashboard:end_users", project.slug)
    tasks.send_verification.delay(person.pk, project.issuer)
    AuditEvent.record(project, "end_user.verification_sent", actor=actions.actor_of(request), request=request,
                      subject=person.subject)
    messages.success(request, f"Sent a verification link to {person.email}.")
    return redirect("dashboard:end_users", project.slug)
