"""A project's trusted enterprise identity providers (ID-JAG): listed, trusted, removed.

Every change goes through `oauth.trusted_issuers` (the CLI's and the management API's way too),
so the same values are accepted everywhere and each change is audited.
"""

import json

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from enterprise.models import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS, TrustedIssuer
from oauth.trusted_issuers import IssuerRefused, IssuerSettings, remove, trust

from .actions import actor_of
from .decorators import WRITE, project_view
from .forms import lines


class TrustedIssuerForm(forms.Form):
    issuer = forms.CharField(label="Issuer URL", max_length=2000,
                             help_text="The identity provider's issuer: the iss of its ID-JAGs (https).")
    jwks_uri = forms.CharField(label="JWKS URL", max_length=2000, required=False,
                               help_text="Where it publishes its signing keys (https). Or paste them below.")
    jwks = forms.CharField(label="JWK Set (inline)", required=False, widget=forms.Textarea(attrs={"rows": 4}),
                           help_text="The public keys as JSON, when there is no JWKS URL.")
    client_ids = forms.CharField(label="Clients", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text="client_ids that may present its assertions, one per line (empty: any "
                                           "client registered for the jwt-bearer grant).")
    scopes = forms.MultipleChoiceField(label="Scopes it may grant", required=False,
                                       widget=forms.CheckboxSelectMultiple,
                                       help_text="None checked: the scopes a client gets by default.")
    algorithms = forms.MultipleChoiceField(label="Signing algorithms", widget=forms.CheckboxSelectMultiple,
                                           choices=[(a, a) for a in ALLOWED_ALGORITHMS])
    provision = forms.BooleanField(label="Create accounts for new people", required=False,
                                   help_text="Off: a person with no account (by link or verified email) is refused.")
    refresh_tokens = forms.BooleanField(label="Issue refresh tokens", required=False,
                                        help_text="Off: clients present a fresh ID-JAG when the token expires.")

    def __init__(self, project, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(s, s) for s in project.scope_names]

    def clean_jwks(self):
        raw = self.cleaned_data["jwks"].strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Paste the JWK Set as JSON: {\"keys\": [...]}.") from None

    def settings(self) -> IssuerSettings:
        data = self.cleaned_data
        return IssuerSettings(issuer=data["issuer"], jwks_uri=data["jwks_uri"].strip(), jwks=data["jwks"],
                              client_ids=lines(data["client_ids"]), scopes=data["scopes"],
                              algorithms=data["algorithms"], provision=data["provision"],
                              refresh_tokens=data["refresh_tokens"])


def _page(request, project, form, status=200):
    issuers = TrustedIssuer.objects.of(project).annotate(people=Count("identities")).order_by("issuer")
    return render(request, "dashboard/enterprise.html",
                  {"project": project, "tab": "enterprise", "form": form, "issuers": issuers}, status=status)


def _blank(project):
    return TrustedIssuerForm(project, initial={"algorithms": list(DEFAULT_ALGORITHMS)})


@never_cache
@project_view()
@require_http_methods(["GET", "POST"])
def issuer_list(request, project):
    if request.method != "POST":
        return _page(request, project, _blank(project))
    if not request.can_write:
        return _page(request, project, _blank(project), status=403)
    form = TrustedIssuerForm(project, request.POST)
    if not form.is_valid():
        return _page(request, project, form, status=400)
    try:
        row = trust(project, form.settings(), actor=actor_of(request), request=request)
    except IssuerRefused as exc:
        form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        return _page(request, project, form, status=400)
    messages.success(request, f"{row.issuer} is trusted. Its ID-JAGs are accepted at the token endpoint.")
    return redirect("dashboard:enterprise", project.slug)


@project_view(WRITE)
@require_POST
def issuer_remove(request, project, pk: int):
    row = get_object_or_404(TrustedIssuer, project=project, pk=pk)
    remove(row, actor=actor_of(request), request=request)
    messages.success(request, f"{row.issuer} is no longer trusted. Its assertions are refused from now on.")
    return redirect("dashboard:enterprise", project.slug)
