"""Shared concerns of dashboard views: an operator session and the project they may see."""

import functools

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from mfa import factors
from projects.models import Project

READ = ("owner", "admin", "viewer")
WRITE = ("owner", "admin")
OWNER = ("owner",)


def operator_required(view):
    """A signed-in operator; one with a second factor must have used it in this session (a session
    from before they enrolled is asked for it, dashboard.security)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_operator):
            return redirect_to_login(request.get_full_path())
        if not request.user.is_verified() and factors.has_factor(request.user):
            return redirect_to_login(request.get_full_path(), reverse("dashboard:login_verify"))
        return view(request, *args, **kwargs)

    return wrapper


def project_for(request, slug: str, roles: tuple[str, ...] = READ) -> tuple[Project, str]:
    """The project `slug` if the operator is a member with one of `roles`; another's is a 404."""
    project = get_object_or_404(Project.objects.visible_to(request.user), slug=slug)
    role = project.role_of(request.user)
    if role not in roles:
        raise Http404("no such project")
    return project, role


def project_view(roles: tuple[str, ...] = READ):
    """A view of one project: `view(request, project, ...)`, with `request.role` set.

    Not a member: 404 (the project's existence is not revealed). A project that requires MFA sends
    a member without a verified second factor to the Security page. A member without one of
    `roles` (a viewer attempting a change): 403.
    """

    def decorator(view):
        @operator_required
        @functools.wraps(view)
        def wrapper(request, slug: str, *args, **kwargs):
            project, role = project_for(request, slug, READ)
            if project.require_mfa and not request.user.is_verified():
                messages.warning(request, f"{project.name} requires two-factor authentication: add a second "
                                          "factor to open it.")
                return redirect("dashboard:security")
            if role not in roles:
                raise PermissionDenied("your role cannot do this")
            request.role = role
            request.can_write = role in WRITE
            return view(request, project, *args, **kwargs)

        return wrapper

    return decorator
