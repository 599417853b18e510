"""Only the middleware each route needs: OAuth JSON endpoints skip the browser stack.

Metadata, JWKS, token, revocation, introspection and the `/api/oauth/...` endpoints are machine
to machine: no cookies, no session, no CSRF (they are `csrf_exempt` and authenticate by client
credentials or bearer secrets), no HTML to frame. `BrowserMiddleware` runs `BROWSER_MIDDLEWARE`
(sessions, CSRF, authentication, messages, framing, CSP) for every other route exactly as if they
were listed in MIDDLEWARE, and lets those routes through without them.

Only the request path decides (the view is not known before URL resolution), so the patterns
below must name JSON endpoints only; `/oauth/authorize`, sign-in and consent pages keep the
whole stack.
"""

import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

# Relative to an issuer (`/p/<slug>` or a custom domain's root), plus the RFC 8414
# path-inserted discovery documents on the origin (`/.well-known/.../p/<slug>`).
MACHINE_ROUTES = re.compile(
    r"^(?:/p/[A-Za-z0-9_-]+)?/(?:\.well-known/|oauth/(?:token|revoke|introspect)$|api/oauth/)"
)


def is_machine_route(path: str) -> bool:
    return MACHINE_ROUTES.match(path) is not None


class BrowserMiddleware:
    """`settings.BROWSER_MIDDLEWARE`, for every route but the OAuth JSON endpoints."""

    def __init__(self, get_response):
        self.get_response = get_response
        handler = get_response
        instances = []
        for path in reversed(settings.BROWSER_MIDDLEWARE):
            instance = import_string(path)(handler)
            for hook in ("process_exception", "process_template_response"):
                if hasattr(instance, hook):
                    raise ImproperlyConfigured(f"{path}.{hook} is not supported inside BROWSER_MIDDLEWARE")
            instances.insert(0, instance)
            handler = convert_exception_to_response(instance)
        self.browser = handler
        self.view_hooks = [m.process_view for m in instances if hasattr(m, "process_view")]

    def __call__(self, request):
        if is_machine_route(request.path_info):
            request.user = AnonymousUser()  # nothing signs in here; present for code that asks
            return self.get_response(request)
        return self.browser(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_machine_route(request.path_info):
            return None
        for hook in self.view_hooks:
            response = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None
