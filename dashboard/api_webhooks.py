"""Management API for a project's signed webhooks (Standard Webhooks).

`/api/v1/projects/{slug}/webhooks[/{id}[/rotate-secret|/test|/deliveries[/{id}/retry]]]`: the
dashboard's Webhooks page for scripts. Every change goes through `webhooks.changes` (validated and
audited as the page's and the CLI's are). A secret is in the answer that made it, and nowhere else.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from webhooks import changes
from webhooks.events import EVENTS
from webhooks.models import Delivery, Webhook

from .api import ManagementView
from .decorators import READ, WRITE

NO_STORE = {"Cache-Control": "no-store"}


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "enabled", "created_at", "previous_secret_expires_at"]


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="https URL of the receiver")
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), allow_empty=False)


class WebhookUpdateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), allow_empty=False,
                                   required=False)
    enabled = serializers.BooleanField(required=False)


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_…, shown once")


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="whsec_…, shown once")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "webhook", "event_id", "type", "state", "attempts", "last_status", "last_error",
                  "last_attempt_at", "next_attempt_at", "delivered_at", "created_at"]


def body_of(request, serializer_class):
    """The request's JSON object, every field known (an unknown one is a 400, never ignored)."""
    data = request.data if isinstance(request.data, dict) else None
    if data is None:
        raise exceptions.ValidationError({"body": ["A JSON object."]})
    unknown = sorted(set(data) - set(serializer_class().fields))
    if unknown:
        raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
    body = serializer_class(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data


def refused(exc: changes.Refused) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field or "webhook": [exc.message]})


class WebhooksView(ManagementView):
    @extend_schema(tags=["webhooks"], summary="The project's webhooks (never their secrets)",
                   responses=WebhookSerializer(many=True))
    def get(self, request, slug):
        rows = Webhook.objects.filter(project=self.project(slug)).order_by("created_at")
        return Response(WebhookSerializer(rows, many=True).data)

    @extend_schema(tags=["webhooks"], summary="Create a webhook (its secret is shown once; audited)",
                   request=WebhookCreateSerializer, responses={201: WebhookCreatedSerializer})
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        data = body_of(request, WebhookCreateSerializer)
        try:
            row, secret = changes.create(project, data["url"], data["events"], actor=request.user.email,
                                         request=request)
        except changes.Refused as exc:
            raise refused(exc) from None
        return Response(WebhookSerializer(row).data | {"secret": secret}, status=status.HTTP_201_CREATED,
                        headers=NO_STORE)


class OneWebhook(ManagementView):
    def row(self, slug, pk, roles=READ) -> Webhook:
        """The webhook `pk` of the project `slug` (another project's is a 404)."""
        project = self.project(slug, roles)
        return get_object_or_404(Webhook, project=project, pk=pk)


class WebhookView(OneWebhook):
    @extend_schema(tags=["webhooks"], summary="One webhook", responses=WebhookSerializer)
    def get(self, request, slug, pk):
        return Response(WebhookSerializer(self.row(slug, pk)).data)

    @extend_schema(tags=["webhooks"], summary="Change its URL, events or enabled switch (audited)",
                   request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def patch(self, request, slug, pk):
        row = self.row(slug, pk, WRITE)
        data = body_of(request, WebhookUpdateSerializer)
        try:
            changes.update(row, actor=request.user.email, request=request, **data)
        except changes.Refused as exc:
            raise refused(exc) from None
        return Response(WebhookSerializer(row).data)

    @extend_schema(tags=["webhooks"], summary="Delete a webhook and its delivery log (audited)", responses={204: None})
    def delete(self, request, slug, pk):
        changes.delete(self.row(slug, pk, WRITE), actor=request.user.email, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateSecretView(OneWebhook):
    reads_body = False

    @extend_schema(tags=["webhooks"], request=None, responses=WebhookSecretSerializer,
                   summary="A new secret (shown once); the previous one also signs for 24 hours")
    def post(self, request, slug, pk):
        secret = changes.rotate(self.row(slug, pk, WRITE), actor=request.user.email, request=request)
        return Response({"secret": secret}, headers=NO_STORE)


class TestEventView(OneWebhook):
    reads_body = False

    @extend_schema(tags=["webhooks"], request=None, responses={202: WebhookDeliverySerializer},
                   summary="Queue a webhook.test event to this webhook")
    def post(self, request, slug, pk):
        queued = changes.send_test(self.row(slug, pk, WRITE), actor=request.user.email, request=request)
        return Response(WebhookDeliverySerializer(queued).data, status=status.HTTP_202_ACCEPTED)


class DeliveriesView(OneWebhook):
    @extend_schema(tags=["webhooks"], summary="Its deliveries, newest first (100 at most)",
                   responses=WebhookDeliverySerializer(many=True))
    def get(self, request, slug, pk):
        row = self.row(slug, pk)
        rows = Delivery.objects.filter(project_id=row.project_id, webhook=row).order_by("-created_at", "-pk")[:100]
        return Response(WebhookDeliverySerializer(rows, many=True).data)


class RetryDeliveryView(OneWebhook):
    reads_body = False

    @extend_schema(tags=["webhooks"], request=None, responses=WebhookDeliverySerializer,
                   summary="Retry a failed delivery now (audited)")
    def post(self, request, slug, pk, delivery):
        row = self.row(slug, pk, WRITE)
        found = get_object_or_404(Delivery, project_id=row.project_id, webhook=row, pk=delivery)
        try:
            changes.retry(found, actor=request.user.email, request=request)
        except changes.Refused as exc:
            raise exceptions.ValidationError({"state": [str(exc)]}) from None
        return Response(WebhookDeliverySerializer(found).data)
