"""A project's settings: registration policy, login, resources, scopes, tokens, rate limits, branding, keys.

One validation for the three ways in: the dashboard posts `SettingsForm`; the management API's
PATCH and `manage.py setproject` give JSON-like values to `change_settings`, which lays them over
the project's current values and validates them with that same form.
"""

from django.contrib import messages
from django.db import models
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from infra import ratelimit
from mfa import factors
from projects.models import Project, SigningKey

from . import actions
from .decorators import WRITE, project_view
from .forms import SettingsForm, as_form_data, rate_limit_key

# Every settings key the API and the command line take: the form's model fields, then the lists
# and the rate limits ({name: "10/15m"}), which the form edits as text.
SETTINGS = [*SettingsForm.Meta.fields, "resources", "scopes", "rate_limits"]
# What a GET of the project shows besides SETTINGS: sent back unchanged in a PATCH, they are ignored.
READ_ONLY = ["slug", "name", "issuer", "created_at", "updated_at"]


class InvalidSettings(Exception):
    """Settings refused; `errors` maps each key to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def unknown_keys(patch: dict, current: dict) -> dict[str, list[str]]:
    """The errors for keys of `patch` that are no setting (a read-only field sent back unchanged from
    `current`, the project as the API shows it, is not one)."""
    errors = {}
    for key, value in patch.items():
        shown = key if isinstance(key, str) and key.isascii() and key.isprintable() else "?"  # never echo odd bytes
        if key in READ_ONLY:
            if value != current.get(key):
                errors[shown] = ["Read-only."]
        elif key not in SETTINGS:
            errors[shown] = [f"Unknown setting; settings: {', '.join(SETTINGS)}."]
    return errors


def change_settings(project: Project, patch: dict, request=None, *, actor: str = "",
                    role: str | None = None) -> list[str]:
    """Apply `patch` ({key: JSON value}, keys from SETTINGS) to `project`, validated as the
    dashboard validates, saved and audited; the names of what changed. InvalidSettings otherwise.
    `role`: the acting member's (None: the command line, which may change everything)."""
    errors: dict[str, list[str]] = {}
    form = SettingsForm(as_form_data(form_values(project, patch, errors)), instance=project)
    if form.is_valid() and request is not None:
        check_require_mfa(form, role, request.user)
    if not form.is_valid() or errors:
        raise InvalidSettings({name: [str(e) for e in errs] for name, errs in form.errors.items()} | errors)
    changed = form.apply()
    if changed:
        actions.update_settings(project, changed, request, actor=actor)
    return changed


def form_values(project: Project, patch: dict, errors: dict[str, list[str]]) -> dict:
    """The project's current settings with `patch` over them, as the settings form's fields; what
    the form cannot see (a list that is not a list, a boolean that is not one) goes to `errors`."""
    values = {name: getattr(project, name) for name in SettingsForm.Meta.fields}
    for name in SettingsForm.Meta.fields:
        if name in patch:
            boolean = isinstance(Project._meta.get_field(name), models.BooleanField)
            if boolean and not isinstance(patch[name], bool):
                errors[name] = ["Must be true or false."]
            elif not boolean and (isinstance(patch[name], bool | list | dict)):
                errors[name] = ["Must be a single value (a number or a string), not true/false, a list or an object."]
            values[name] = patch[name]
    resources = patch.get("resources", project.resources)
    scopes = patch.get("scopes", project.scopes)
    if not isinstance(resources, list) or not isinstance(scopes, list):
        errors |= {"resources": ["A list."], "scopes": ["A list."]}
    else:
        values["resources_text"] = "\n".join(str(r) for r in resources)
        values["scopes_text"] = "\n".join(
            (f"{s.get('name', '')} — {s['description']}" if s.get("description") else str(s.get("name", "")))
            if isinstance(s, dict) else str(s)
            for s in scopes
        )
    return values | rate_limit_values(project, patch.get("rate_limits", {}), errors)


def rate_limit_values(project: Project, patch, errors: dict) -> dict[str, str]:
    """The rate-limit fields: the project's own limits as text, with `patch` ({name: text or null}) over them."""
    texts = {name: ratelimit.format_windows(windows) for name, windows in (project.rate_limits or {}).items()}
    if not isinstance(patch, dict):
        errors["rate_limits"] = ['An object like {"signin:account": "10/15m"}.']
        return {}
    names = {limit.name for limit in ratelimit.PROJECT_LIMITS}
    for name, text in patch.items():
        if name not in names:
            shown = name if name.isascii() and name.isprintable() else "?"  # never echo odd bytes back
            errors[rate_limit_key(shown)] = [f"Unknown rate limit; one of {', '.join(sorted(names))}."]
        elif text is not None and not isinstance(text, str):
            errors[rate_limit_key(name)] = ['A limit like "10/15m", or null for the default.']
        else:
            texts[name] = text or ""
    return {rate_limit_key(name): text for name, text in texts.items() if name in names}


OWNER_ONLY = "Only a project owner may change this."
OWN_FACTOR_FIRST = "Add a second factor to your own account first (Account → Two-factor authentication)."


def check_require_mfa(form: SettingsForm, role: str | None, user) -> None:
    """Only an owner turns `require_mfa` on or off, and turns it on only with a second factor of their
    own (they would be sent to enrol at once otherwise). Errors go on the form."""
    wanted = form.cleaned_data.get("require_mfa")
    if wanted == form.original["require_mfa"]:
        return
    if role is not None and role != "owner":
        form.add_error("require_mfa", OWNER_ONLY)
    elif wanted and user is not None and user.is_authenticated and not factors.has_factor(user):
        form.add_error("require_mfa", OWN_FACTOR_FIRST)


def settings_form(request, project, data=None) -> SettingsForm:
    form = SettingsForm(data, instance=project)
    form.fields["require_mfa"].disabled = request.role != "owner"  # shown, not editable
    return form


@project_view()
@require_http_methods(["GET", "POST"])
def project_settings(request, project):
    status = 200
    form = settings_form(request, project)
    if request.method == "POST":
        if not request.can_write:
            return _page(request, project, form, status=403)
        # A fresh copy: a failed form must not leave half-applied values on `project`.
        form = settings_form(request, Project.objects.get(pk=project.pk), request.POST)
        if form.is_valid():
            check_require_mfa(form, request.role, request.user)
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
