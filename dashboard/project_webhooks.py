"""A project's signed webhooks: add (secret shown once), edit events, enable/disable, rotate the
secret, delete, send a test event; and the delivery log with "Retry now" for a failed delivery.
Every change goes through `webhooks.changes` (validated and audited as the API's and the CLI's)."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from webhooks import changes
from webhooks.events import EVENTS
from webhooks.models import Delivery, Webhook

from .actions import actor_of
from .decorators import WRITE, project_view

LOG_SIZE = 50


class WebhookForm(forms.Form):
    url = forms.CharField(label="Endpoint URL", max_length=2000,
                          help_text="https only; private and loopback addresses are refused.")
    events = forms.MultipleChoiceField(label="Events", widget=forms.CheckboxSelectMultiple,
                                       choices=[(name, f"{name} — {text}") for name, text in EVENTS.items()])


class EventsForm(forms.Form):
    events = forms.MultipleChoiceField(label="Events", widget=forms.CheckboxSelectMultiple,
                                       choices=[(name, name) for name in EVENTS])


def _page(request, project, form, revealed=None, status=200):
    hooks = list(Webhook.objects.filter(project=project).order_by("created_at"))
    for hook in hooks:
        hook.events_form = EventsForm(initial={"events": hook.events}, auto_id=f"id_hook{hook.pk}_%s")
    deliveries = (Delivery.objects.filter(project=project).select_related("webhook")
                  .order_by("-created_at", "-pk")[:LOG_SIZE])
    context = {"project": project, "tab": "webhooks", "form": form, "webhooks": hooks, "deliveries": deliveries,
               "revealed": revealed}
    return render(request, "dashboard/webhooks.html", context, status=status)


def _hook(project, pk: int) -> Webhook:
    return get_object_or_404(Webhook, project=project, pk=pk)


@never_cache
@project_view()
@require_http_methods(["GET", "POST"])
def webhook_list(request, project):
    if request.method != "POST":
        return _page(request, project, WebhookForm())
    if not request.can_write:
        return _page(request, project, WebhookForm(), status=403)
    form = WebhookForm(request.POST)
    if not form.is_valid():
        return _page(request, project, form, status=400)
    try:
        hook, secret = changes.create(project, form.cleaned_data["url"], form.cleaned_data["events"],
                                      actor=actor_of(request), request=request)
    except changes.Refused as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _page(request, project, form, status=400)
    # The plaintext exists only in this response; the row keeps it encrypted.
    return _page(request, project, WebhookForm(), revealed=(f"Signing secret for {hook.url}", secret))


@never_cache
@project_view(WRITE)
@require_POST
def webhook_events(request, project, pk: int):
    hook = _hook(project, pk)
    form = EventsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose at least one event.")
        return redirect("dashboard:webhooks", project.slug)
    changes.update(hook, actor=actor_of(request), request=request, events=form.cleaned_data["events"])
    messages.success(request, f"Events of {hook.url} saved.")
    return redirect("dashboard:webhooks", project.slug)


@project_view(WRITE)
@require_POST
def webhook_toggle(request, project, pk: int):
    hook = _hook(project, pk)
    changes.update(hook, actor=actor_of(request), request=request, enabled=not hook.enabled)
    messages.success(request, f"{hook.url} is {'enabled' if hook.enabled else 'disabled'}.")
    return redirect("dashboard:webhooks", project.slug)


@never_cache
@project_view(WRITE)
@require_POST
def webhook_rotate(request, project, pk: int):
    hook = _hook(project, pk)
    secret = changes.rotate(hook, actor=actor_of(request), request=request)
    return _page(request, project, WebhookForm(),
                 revealed=(f"New signing secret for {hook.url} (the previous one also signs for 24 hours)", secret))


@project_view(WRITE)
@require_POST
def webhook_delete(request, project, pk: int):
    hook = _hook(project, pk)
    changes.delete(hook, actor=actor_of(request), request=request)
    messages.success(request, f"Webhook {hook.url} was deleted.")
    return redirect("dashboard:webhooks", project.slug)


@project_view(WRITE)
@require_POST
def webhook_test(request, project, pk: int):
    hook = _hook(project, pk)
    changes.send_test(hook, actor=actor_of(request), request=request)
    messages.success(request, f"A webhook.test event is queued for {hook.url}.")
    return redirect("dashboard:webhooks", project.slug)


@project_view(WRITE)
@require_POST
def delivery_retry(request, project, pk: int):
    found = get_object_or_404(Delivery, project=project, pk=pk)
    try:
        changes.retry(found, actor=actor_of(request), request=request)
        messages.success(request, f"Delivery {found.event_id} will be retried now.")
    except changes.Refused as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:webhooks", project.slug)
