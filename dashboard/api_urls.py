"""Routes of the management API (/api/v1/...), its OpenAPI schema and the rendered docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api, api_activity, api_enterprise, api_identity, api_webhooks

P = "api/v1/projects/<slug:slug>"

urlpatterns = [
    path("api/schema", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/endpoints", SpectacularSwaggerSplitView.as_view(url_name="dashboard:api_schema",
                                                              title="mcpauth API"), name="api_docs"),
    path("api/v1/projects", api.ProjectsView.as_view(), name="api_projects"),
    path(P, api.ProjectView.as_view(), name="api_project"),
    path(P + "/rotate-key", api.RotateKeyView.as_view(), name="api_rotate_key"),
    path(P + "/clients", api.ClientsView.as_view(), name="api_clients"),
    path(P + "/clients/<int:pk>", api.ClientView.as_view(), name="api_client"),
    path(P + "/clients/<int:pk>/revoke-tokens", api.RevokeClientTokensView.as_view(),
         name="api_client_revoke_tokens"),
    path(P + "/clients/<int:pk>/disable", api.DisableClientView.as_view(), name="api_client_disable"),
    path(P + "/clients/<int:pk>/enable", api.DisableClientView.as_view(disabled=False), name="api_client_enable"),
    path(P + "/secrets", api.SecretsView.as_view(), name="api_secrets"),
    path(P + "/secrets/<int:pk>", api.SecretView.as_view(), name="api_secret"),
    path(P + "/end-users", api.EndUsersView.as_view(), name="api_end_users"),
    path(P + "/end-users/<int:pk>/revoke", api.EndUserRevokeView.as_view(), name="api_end_user_revoke"),
    path(P + "/members", api.MembersView.as_view(), name="api_members"),
    path(P + "/members/<int:pk>", api.MemberView.as_view(), name="api_member"),
    path(P + "/audit-events", api.AuditEventsView.as_view(), name="api_audit_events"),
    path(P + "/activity", api_activity.ActivityView.as_view(), name="api_activity"),
    path(P + "/grants", api_activity.GrantsView.as_view(), name="api_grants"),
    path(P + "/trusted-issuers", api_enterprise.TrustedIssuersView.as_view(), name="api_trusted_issuers"),
    path(P + "/trusted-issuers/<int:pk>", api_enterprise.TrustedIssuerView.as_view(), name="api_trusted_issuer"),
    path(P + "/webhooks", api_webhooks.WebhooksView.as_view(), name="api_webhooks"),
    path(P + "/webhooks/<int:pk>", api_webhooks.WebhookView.as_view(), name="api_webhook"),
    path(P + "/webhooks/<int:pk>/rotate-secret", api_webhooks.RotateSecretView.as_view(), name="api_webhook_rotate"),
    path(P + "/webhooks/<int:pk>/test", api_webhooks.TestEventView.as_view(), name="api_webhook_test"),
    path(P + "/webhooks/<int:pk>/deliveries", api_webhooks.DeliveriesView.as_view(), name="api_webhook_deliveries"),
    path(P + "/webhooks/<int:pk>/deliveries/<int:delivery>/retry", api_webhooks.RetryDeliveryView.as_view(),
         name="api_webhook_retry"),
    path(P + "/identity-providers", api_identity.IdentityProvidersView.as_view(), name="api_identity_providers"),
    path(P + "/identity-providers/<int:pk>", api_identity.IdentityProviderView.as_view(), name="api_identity_provider"),
    path(P + "/end-users/<int:pk>/identities", api_identity.EndUserIdentitiesView.as_view(),
         name="api_end_user_identities"),
    path(P + "/end-users/<int:pk>/identities/<int:identity_pk>", api_identity.EndUserIdentityView.as_view(),
         name="api_end_user_identity"),
]
