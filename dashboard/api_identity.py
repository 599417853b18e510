"""Management API for a project's upstream identity providers and the identities they linked.

`/api/v1/projects/{slug}/identity-providers[/{id}]` and
`/api/v1/projects/{slug}/end-users/{id}/identities[/{identity id}]`: the dashboard's pages for
scripts. Every change goes through `identity.manage`, as the page's and the CLI's do. The client
secret is write-only.
"""

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from identity.manage import ProviderRefused, ProviderSettings, add, change, remove, settings_of, unlink
from identity.models import IdentityProvider, Kind, UpstreamIdentity

from .api import ManagementView
from .decorators import READ, WRITE


class IdentityProviderSerializer(serializers.ModelSerializer):
    callback_url = serializers.CharField(read_only=True, help_text="Register this redirect URI at the provider")

    class Meta:
        model = IdentityProvider
        fields = ["id", "kind", "name", "client_id", "issuer", "scopes", "domains", "create_accounts", "enabled",
                  "callback_url", "created_at", "updated_at"]


class IdentityProviderWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    name = serializers.CharField(max_length=100, help_text="Shown as `Continue with {name}`")
    client_id = serializers.CharField(max_length=500)
    client_secret = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                          write_only=True, help_text="Required to add; empty on a change keeps it")
    issuer = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                   help_text="oidc: the issuer URL; microsoft: the tenant (default common)")
    scopes = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    domains = serializers.ListField(child=serializers.CharField(max_length=253), required=False, default=list)
    create_accounts = serializers.BooleanField(required=False, default=True)
    enabled = serializers.BooleanField(required=False, default=True)


class UpstreamIdentitySerializer(serializers.ModelSerializer):
    provider_name = serializers.CharField(source="provider.name")

    class Meta:
        model = UpstreamIdentity
        fields = ["id", "provider", "provider_name", "subject", "email", "email_verified", "created_at", "last_used_at"]


def _body(request, partial_of: IdentityProvider | None = None) -> ProviderSettings:
    data = request.data if isinstance(request.data, dict) else {}
    if partial_of is not None:
        data = {**asdict(settings_of(partial_of)), **data}
    body = IdentityProviderWriteSerializer(data=data)
    body.is_valid(raise_exception=True)
    return ProviderSettings(**body.validated_data)


def _refused(exc: ProviderRefused) -> exceptions.ValidationError:
    return exceptions.ValidationError({exc.field: [str(exc)]})


class IdentityProvidersView(ManagementView):
    @extend_schema(tags=["identity providers"], summary="Upstream identity providers",
                   responses=IdentityProviderSerializer(many=True))
    def get(self, request, slug):
        rows = IdentityProvider.objects.of(self.project(slug)).select_related("project").order_by("name", "pk")
        return Response(IdentityProviderSerializer(rows, many=True).data)

    @extend_schema(tags=["identity providers"], summary="Add an identity provider (audited)",
                   request=IdentityProviderWriteSerializer, responses={201: IdentityProviderSerializer})
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        try:
            row = add(project, _body(request), actor=request.user.email, request=request)
        except ProviderRefused as exc:
            raise _refused(exc) from None
        return Response(IdentityProviderSerializer(row).data, status=status.HTTP_201_CREATED)


class IdentityProviderView(ManagementView):
    def row(self, slug, pk, roles=READ) -> IdentityProvider:
        project = self.project(slug, roles)
        return get_object_or_404(IdentityProvider.objects.select_related("project"), project=project, pk=pk)

    @extend_schema(tags=["identity providers"], summary="One identity provider", responses=IdentityProviderSerializer)
    def get(self, request, slug, pk):
        return Response(IdentityProviderSerializer(self.row(slug, pk)).data)

    @extend_schema(tags=["identity providers"], summary="Change an identity provider (audited); omitted fields keep their value",
                   request=IdentityProviderWriteSerializer, responses=IdentityProviderSerializer)
    def patch(self, request, slug, pk):
        row = self.row(slug, pk, WRITE)
        try:
            row = change(row, _body(request, partial_of=row), actor=request.user.email, request=request)
        except ProviderRefused as exc:
            raise _refused(exc) from None
        return Response(IdentityProviderSerializer(row).data)

    @extend_schema(tags=["identity providers"], summary="Delete an identity provider and its links (audited)",
                   responses={204: None})
    def delete(self, request, slug, pk):
        remove(self.row(slug, pk, WRITE), actor=request.user.email, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndUserIdentitiesView(ManagementView):
    @extend_schema(tags=["end users"], summary="The upstream identities linked to an end user",
                   responses=UpstreamIdentitySerializer(many=True))
    def get(self, request, slug, pk):
        person = get_object_or_404(self.project(slug).end_users, pk=pk)
        rows = UpstreamIdentity.objects.filter(user=person).select_related("provider").order_by("created_at")
        return Response(UpstreamIdentitySerializer(rows, many=True).data)


class EndUserIdentityView(ManagementView):
    @extend_schema(tags=["end users"], summary="Unlink an upstream identity (audited)", responses={204: None})
    def delete(self, request, slug, pk, identity_pk):
        person = get_object_or_404(self.project(slug, WRITE).end_users, pk=pk)
        identity = get_object_or_404(UpstreamIdentity.objects.select_related("provider", "user"), user=person, pk=identity_pk)
        unlink(identity, actor=request.user.email, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
