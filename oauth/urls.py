"""The routes of one issuer, relative to it (mounted at /p/<slug>/ and at a custom domain's root)."""

from django.urls import path

from . import discovery, jwks, registration
from . import introspection, revocation, token, token_exchange  # issue 5: tokens

app_name = "oauth"

urlpatterns = [
    path(".well-known/oauth-authorization-server", discovery.metadata, name="metadata"),
    path(".well-known/openid-configuration", discovery.metadata, name="openid-configuration"),
    path(".well-known/jwks.json", jwks.jwks, name="jwks"),
    # Tokens (issue 5)
    path("oauth/token", token.token, name="token"),
    path("oauth/revoke", revocation.revoke, name="revoke"),
    path("oauth/introspect", introspection.introspect, name="introspect"),
    path("api/oauth/introspect", introspection.introspect, name="api-introspect"),
    path("api/oauth/token/exchange", token_exchange.exchange, name="token-exchange"),
    path("api/oauth/register", registration.register, name="register"),
    path("api/oauth/register/<str:client_id>", registration.manage, name="register-manage"),
]
