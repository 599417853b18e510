"""Who may manage a project: owners add operators by email and change roles."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from mfa import factors
from projects.models import ProjectMember

from . import actions
from .decorators import OWNER, project_view
from .forms import MemberForm, RoleForm


@project_view()
@require_http_methods(["GET", "POST"])
def member_list(request, project):
    form = MemberForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if request.role not in OWNER:
            status = 403
        elif form.is_valid():
            actions.add_member(project, form.cleaned_data["email"], form.cleaned_data["role"], request)
            messages.success(request, f"{form.cleaned_data['email'].email} is now {form.cleaned_data['role']}.")
            return redirect("dashboard:members", project.slug)
        else:
            status = 400
    members = list(project.memberships.select_related("user").order_by("role", "user__email"))
    with_mfa = factors.users_with_factor(m.user_id for m in members)
    for member in members:
        member.has_mfa = member.user_id in with_mfa
    context = {"project": project, "tab": "members", "form": form, "members": members,
               "roles": ProjectMember.Role.choices, "is_owner": request.role in OWNER}
    return render(request, "dashboard/members.html", context, status=status)


@project_view(OWNER)
@require_POST
def member_change(request, project, pk: int):
    member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=pk)
    role = None
    if request.POST.get("action") != "remove":
        form = RoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a role.")
            return redirect("dashboard:members", project.slug)
        role = form.cleaned_data["role"]
    try:
        actions.change_role(project, member, role, request)
    except actions.LastOwner:
        messages.error(request, "A project needs at least one owner. Make someone else owner first.")
        return redirect("dashboard:members", project.slug)
    messages.success(request, f"{member.user.email} was removed." if role is None
                     else f"{member.user.email} is now {role}.")
    if role is None and member.user_id == request.user.pk:
        return redirect("dashboard:home")
    return redirect("dashboard:members", project.slug)
