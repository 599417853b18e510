"""A project's upstream identity providers (docs/identity.md): listed, added, edited, turned off,
deleted, and tried with "Test sign-in"; and unlinking an end user's identity.

Every change goes through `identity.manage` (the CLI's and the management API's way too), so the
same values are accepted everywhere and each change is audited. The client secret is write-only.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from identity import state as states
from identity import upstream
from identity.manage import ProviderRefused, ProviderSettings, add, change, remove, settings_of, unlink
from identity.models import IdentityProvider, Kind, UpstreamIdentity, callback_url

from .actions import actor_of
from .decorators import WRITE, project_view
from .forms import lines


class IdentityProviderForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices)
    name = forms.CharField(max_length=100, help_text="Shown on the sign-in page as “Continue with {name}”.")
    client_id = forms.CharField(label="Client ID", max_length=500, help_text="Our client's id at the provider.")
    client_secret = forms.CharField(label="Client secret", max_length=2000, required=False,
                                    widget=forms.PasswordInput(render_value=False),
                                    help_text="Stored encrypted, never shown again. Leave empty to keep the current one.")
    issuer = forms.CharField(label="Issuer or tenant", max_length=2000, required=False,
                             help_text="OpenID Connect: the issuer URL (https). Microsoft: the tenant (common, "
                                       "organizations, or a tenant id). GitHub, Google: empty.")
    scopes = forms.CharField(label="Extra scopes", max_length=2000, required=False,
                             help_text="Asked for on top of the provider's own, separated by spaces.")
    domains = forms.CharField(label="Email domains", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text="One per line: typing such an email on the sign-in page goes to this provider.")
    create_accounts = forms.BooleanField(label="Create accounts for new people", required=False,
                                         help_text="Off: only people already linked, or whose verified email has an account here.")
    enabled = forms.BooleanField(label="Enabled", required=False, help_text="Off: the button is not shown.")

    def settings(self) -> ProviderSettings:
        data = self.cleaned_data
        return ProviderSettings(kind=data["kind"], name=data["name"], client_id=data["client_id"],
                                client_secret=data["client_secret"], issuer=data["issuer"],
                                scopes=data["scopes"].split(), domains=lines(data["domains"]),
                                create_accounts=data["create_accounts"], enabled=data["enabled"])


def _initial(row: IdentityProvider) -> dict:
    wanted = settings_of(row)
    return {**wanted.__dict__, "scopes": " ".join(wanted.scopes), "domains": "\n".join(wanted.domains)}


def _page(request, project, form, status=200):
    rows = IdentityProvider.objects.of(project).order_by("name", "pk")
    return render(request, "dashboard/identity_providers.html",
                  {"project": project, "tab": "identity", "form": form, "providers": rows,
                   "callback_url": callback_url(project)}, status=status)


def _refused(form, exc: ProviderRefused) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


@never_cache
@project_view()
@require_http_methods(["GET", "POST"])
def provider_list(request, project):
    blank = IdentityProviderForm(initial={"create_accounts": True, "enabled": True})
    if request.method != "POST":
        return _page(request, project, blank)
    if not request.can_write:
        return _page(request, project, blank, status=403)
    form = IdentityProviderForm(request.POST)
    if not form.is_valid():
        return _page(request, project, form, status=400)
    try:
        row = add(project, form.settings(), actor=actor_of(request), request=request)
    except ProviderRefused as exc:
        _refused(form, exc)
        return _page(request, project, form, status=400)
    messages.success(request, f"{row.name} added. Register {row.callback_url} as its redirect URI.")
    return redirect("dashboard:identity_providers", project.slug)


@never_cache
@project_view(WRITE)
@require_http_methods(["GET", "POST"])
def provider_edit(request, project, pk: int):
    row = get_object_or_404(IdentityProvider, project=project, pk=pk)
    form = IdentityProviderForm(request.POST if request.method == "POST" else None, initial=_initial(row))
    form.fields["kind"].disabled = True
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                change(row, form.settings(), actor=actor_of(request), request=request)
                messages.success(request, f"{row.name} saved.")
                return redirect("dashboard:identity_providers", project.slug)
            except ProviderRefused as exc:
                _refused(form, exc)
        status = 400
    return render(request, "dashboard/identity_provider_edit.html",
                  {"project": project, "tab": "identity", "form": form, "provider": row}, status=status)


@project_view(WRITE)
@require_POST
def provider_toggle(request, project, pk: int):
    row = get_object_or_404(IdentityProvider, project=project, pk=pk)
    wanted = settings_of(row)
    wanted.enabled = not row.enabled
    change(row, wanted, actor=actor_of(request), request=request)
    messages.success(request, f"{row.name} is {'on' if row.enabled else 'off'}.")
    return redirect("dashboard:identity_providers", project.slug)


@project_view(WRITE)
@require_POST
def provider_delete(request, project, pk: int):
    row = get_object_or_404(IdentityProvider, project=project, pk=pk)
    remove(row, actor=actor_of(request), request=request)
    messages.success(request, f"{row.name} deleted, with the identities it linked.")
    return redirect("dashboard:identity_providers", project.slug)


@project_view(WRITE)
@require_POST
def provider_test(request, project, pk: int):
    """Run the upstream leg as the operator; the callback shows what came back, makes nobody."""
    row = get_object_or_404(IdentityProvider, project=project, pk=pk)
    try:
        return HttpResponseRedirect(upstream.start(row, tester_id=request.user.pk))
    except upstream.UpstreamFailed:
        messages.error(request, f"{row.name} could not be reached: check the issuer (its discovery document).")
        return redirect("dashboard:identity_providers", project.slug)


@never_cache
@project_view(WRITE)
def provider_tested(request, project, pk: int):
    row = get_object_or_404(IdentityProvider, project=project, pk=pk)
    result = states.test_result(request.GET.get("result", ""), tester_id=request.user.pk, provider_id=row.pk)
    if result is None:
        raise PermissionDenied("no such test result")
    return render(request, "dashboard/identity_provider_tested.html",
                  {"project": project, "tab": "identity", "provider": row, "result": result})


@project_view(WRITE)
@require_POST
def identity_unlink(request, project, pk: int, identity_pk: int):
    person = get_object_or_404(project.end_users, pk=pk)
    identity = get_object_or_404(UpstreamIdentity.objects.select_related("provider", "user"), user=person, pk=identity_pk)
    unlink(identity, actor=actor_of(request), request=request)
    messages.success(request, f"{identity.provider.name} is no longer linked to {person}.")
    return redirect("dashboard:end_users", project.slug)
