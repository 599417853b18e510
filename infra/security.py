"""Response headers that keep pages from being framed or running injected script."""

from django.conf import settings

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' https: data:",
        "style-src 'self' 'unsafe-inline'",
        "script-src 'self'",
        "form-action 'self' http: https:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds a strict CSP to HTML responses (JSON endpoints do not need one)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", CSP)
        return response


def client_ip(request) -> str:
    """The caller's address, honouring X-Forwarded-For only behind TRUSTED_PROXY_COUNT proxies."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")
