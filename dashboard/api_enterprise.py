"""Management API for a project's trusted enterprise identity providers (ID-JAG).

`/api/v1/projects/{slug}/trusted-issuers[/{id}]`: the dashboard's Enterprise page for scripts.
Every change goes through `oauth.trusted_issuers`, as the page's and the CLI's do.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from enterprise.models import ALLOWED_ALGORITHMS, DEFAULT_ALGORITHMS, TrustedIssuer
from oauth.trusted_issuers import IssuerRefused, IssuerSettings, remove, trust

from .api import ManagementView
from .decorators import WRITE


class TrustedIssuerSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrustedIssuer
        fields = ["id", "issuer", "jwks_uri", "jwks", "algorithms", "client_ids", "scopes", "provision",
                  "refresh_tokens", "created_at", "created_by"]


class TrustedIssuerCreateSerializer(serializers.Serializer):
    issuer = serializers.CharField(max_length=2000, help_text="The IdP's issuer URL (https): its ID-JAGs' iss")
    jwks_uri = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="",
                                     help_text="https URL of its JWK Set (or give jwks)")
    jwks = serializers.JSONField(required=False, default=None, help_text="An inline JWK Set (or give jwks_uri)")
    client_ids = serializers.ListField(child=serializers.CharField(max_length=255), required=False, default=list)
    scopes = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    algorithms = serializers.ListField(child=serializers.ChoiceField(choices=list(ALLOWED_ALGORITHMS)),
                                       required=False, default=lambda: list(DEFAULT_ALGORITHMS))
    provision = serializers.BooleanField(required=False, default=False)
    refresh_tokens = serializers.BooleanField(required=False, default=False)


class TrustedIssuersView(ManagementView):
    @extend_schema(tags=["enterprise"], summary="Trusted enterprise identity providers",
                   responses=TrustedIssuerSerializer(many=True))
    def get(self, request, slug):
        issuers = TrustedIssuer.objects.of(self.project(slug)).order_by("issuer")
        return Response(TrustedIssuerSerializer(issuers, many=True).data)

    @extend_schema(tags=["enterprise"], summary="Trust an identity provider (audited)",
                   request=TrustedIssuerCreateSerializer, responses={201: TrustedIssuerSerializer})
    def post(self, request, slug):
        project = self.project(slug, WRITE)
        body = TrustedIssuerCreateSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        try:
            row = trust(project, IssuerSettings(**body.validated_data), actor=request.user.email, request=request)
        except IssuerRefused as exc:
            raise exceptions.ValidationError({exc.field: [str(exc)]}) from None
        return Response(TrustedIssuerSerializer(row).data, status=status.HTTP_201_CREATED)


class TrustedIssuerView(ManagementView):
    @extend_schema(tags=["enterprise"], summary="Stop trusting an identity provider (audited)",
                   responses={204: None})
    def delete(self, request, slug, pk):
        row = get_object_or_404(TrustedIssuer, project=self.project(slug, WRITE), pk=pk)
        remove(row, actor=request.user.email, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
