from django.conf import settings
from django.urls import include, path

from oauth.endpoints import discovery

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # RFC 8414 §3.1: the well-known suffix inserted between the origin and the issuer's path.
    path(".well-known/oauth-authorization-server/p/<slug:project_slug>", discovery.metadata),
    path(".well-known/openid-configuration/p/<slug:project_slug>", discovery.metadata),
    path("p/<slug:project_slug>/", include("oauth.urls")),
    path("", include("dashboard.urls")),
]

if settings.BENCH_HELLO:  # the benchmark's ceiling (make bench); off unless BENCH_HELLO=true
    from . import hello

    urlpatterns.insert(0, path("bench/hello", hello.hello))

handler404 = "mcpauth_service.errors.not_found"
handler500 = "mcpauth_service.errors.server_error"
