"""Shared concerns of dashboard views: an operator session and the project they may see."""

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404

from projects.models import Project


def operator_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_operator):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def project_for(request, slug: str, roles: tuple[str, ...] = ("owner", "admin", "viewer")) -> tuple[Project, str]:
    """The project `slug` if the operator is a member with one of `roles`; another's is a 404."""
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    role = project.role_of(request.user)
    if role not in roles:
        raise Http404("no such project")
    return project, role
