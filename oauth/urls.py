"""The routes of one issuer, relative to it (mounted at /p/<slug>/ and at a custom domain's root)."""

from django.urls import path

from oauth.endpoints import (
    authorize,
    consent,
    device,
    discovery,
    exchange,
    handoff,
    introspection,
    jwks,
    password_reset,
    registration,
    revocation,
    revocation_feed,
    signin,
    token,
    upstream,
    userinfo,
    verification,
)

app_name = "oauth"

urlpatterns = [
    # The machine endpoints clients and resource servers call most come first (URL resolution is linear).
    path("oauth/token", token.token, name="token"),
    path("oauth/introspect", introspection.introspect, name="introspect"),
    path("api/oauth/introspect", introspection.introspect, name="api-introspect"),
    path("oauth/revoke", revocation.revoke, name="revoke"),
    path("oauth/revocations", revocation_feed.revocations, name="revocations"),
    path("api/oauth/register", registration.register, name="register"),
    path("api/oauth/register/<str:client_id>", registration.manage, name="register-manage"),
    path("api/oauth/token/exchange", exchange.exchange, name="token-exchange"),
    path(".well-known/oauth-authorization-server", discovery.metadata, name="metadata"),
    path(".well-known/openid-configuration", discovery.metadata, name="openid-configuration"),
    path(".well-known/jwks.json", jwks.jwks, name="jwks"),
    path("oauth/userinfo", userinfo.userinfo, name="userinfo"),
    # Authorization (issue 4)
    path("oauth/authorize", authorize.authorize, name="authorize"),
    path("oauth/signin", signin.signin, name="signin"),
    path("oauth/signup", signin.signup, name="signup"),
    path("oauth/consent", consent.consent, name="consent"),
    path("oauth/check-email", verification.check_email, name="check-email"),
    path("oauth/verify-email", verification.verify_email, name="verify-email"),
    path("oauth/forgot-password", password_reset.forgot_password, name="forgot-password"),
    path("oauth/reset-password", password_reset.reset_password, name="reset-password"),
    # Upstream identity providers (docs/identity.md)
    path("oauth/upstream/start", upstream.start, name="upstream-start"),
    path("oauth/upstream/callback", upstream.callback, name="upstream-callback"),
    # Device authorization grant (RFC 8628)
    path("oauth/device_authorization", device.device_authorization, name="device-authorization"),
    path("device", device.verify, name="device"),
    path("api/oauth/authorization-requests/<str:authorization_id>", handoff.authorization_request,
         name="authorization-request"),
    path("api/oauth/authorization-requests/<str:authorization_id>/complete", handoff.complete,
         name="authorization-request-complete"),
    path("api/oauth/authorization-requests/<str:authorization_id>/deny", handoff.deny_request,
         name="authorization-request-deny"),
]
