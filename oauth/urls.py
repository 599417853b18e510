"""The routes of one issuer, relative to it (mounted at /p/<slug>/ and at a custom domain's root)."""

from django.urls import path

from . import discovery, jwks

app_name = "oauth"

urlpatterns = [
    path(".well-known/oauth-authorization-server", discovery.metadata, name="metadata"),
    path(".well-known/openid-configuration", discovery.metadata, name="openid-configuration"),
    path(".well-known/jwks.json", jwks.jwks, name="jwks"),
]
