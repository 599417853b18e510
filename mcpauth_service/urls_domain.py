"""URLs for a request that arrived on a project's custom domain: the issuer's routes at the root."""

from django.urls import include, path

from . import health

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("", include("oauth.urls")),
]

handler404 = "mcpauth_service.errors.not_found"
handler500 = "mcpauth_service.errors.server_error"
