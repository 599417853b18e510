"""A project's secrets (`mcps_…`): created with permissions and shown once, revoked, last used."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from projects.models import ProjectSecret

from .actions import actor_of
from .decorators import WRITE, project_view
from .forms import SecretForm


def _page(request, project, form, new_secret=None, status=200):
    secrets = project.secrets.order_by("revoked_at", "-created_at")
    context = {"project": project, "tab": "secrets", "form": form, "secrets": secrets, "new_secret": new_secret,
               "permissions": ProjectSecret.PERMISSIONS}
    return render(request, "dashboard/secrets.html", context, status=status)


@never_cache
@project_view()
@require_http_methods(["GET", "POST"])
def secret_list(request, project):
    if request.method != "POST":
        return _page(request, project, SecretForm(initial={"permissions": ["introspect"]}))
    if not request.can_write:
        return _page(request, project, SecretForm(), status=403)
    form = SecretForm(request.POST)
    if not form.is_valid():
        return _page(request, project, form, status=400)
    row, value = ProjectSecret.issue(project, form.cleaned_data["name"], form.cleaned_data["permissions"],
                                     created_by=request.user)
    # The plaintext exists only in this response; the row keeps a prefix and a digest.
    return _page(request, project, SecretForm(initial={"permissions": ["introspect"]}), new_secret=(row, value))


@project_view(WRITE)
@require_POST
def secret_revoke(request, project, pk: int):
    secret = get_object_or_404(ProjectSecret, project=project, pk=pk)
    secret.revoke(actor=actor_of(request))
    messages.success(request, f"Secret “{secret.name}” was revoked. Requests using it now get 401.")
    return redirect("dashboard:secrets", project.slug)
