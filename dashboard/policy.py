"""A project's settings: registration policy, login, resources, scopes, tokens, branding, keys."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from projects.models import Project, SigningKey

from . import actions
from .decorators import WRITE, project_view
from .forms import SettingsForm


@project_view()
@require_http_methods(["GET", "POST"])
def project_settings(request, project):
    status = 200
    form = SettingsForm(instance=project)
    if request.method == "POST":
        if not request.can_write:
            return _page(request, project, form, status=403)
        # A fresh copy: a failed form must not leave half-applied values on `project`.
        form = SettingsForm(request.POST, instance=Project.objects.get(pk=project.pk))
        if form.is_valid():
            changed = form.apply()
            if changed:
                actions.update_settings(form.instance, changed, request)
                messages.success(request, "Settings saved: " + ", ".join(changed) + ".")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("dashboard:settings", project.slug)
        status = 400
    return _page(request, project, form, status=status)


def _page(request, project, form, status=200):
    keys = SigningKey.objects.filter(project=project).order_by("-created_at")[:10]
    return render(request, "dashboard/settings.html",
                  {"project": project, "tab": "settings", "form": form, "keys": keys}, status=status)


@project_view(WRITE)
@require_POST
def rotate_key(request, project):
    key = project.rotate_signing_key(actor=actions.actor_of(request))
    messages.success(request, f"New signing key {key.kid} is in use; the previous one stays published "
                              "until its tokens have expired.")
    return redirect("dashboard:settings", project.slug)
