"""Tenant resolution in one place: `/p/{slug}` or a project's custom domain -> `request.project`.

Views under a project route never look the project up themselves; unknown slugs are a 404.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http import Http404

from .models import Project

DOMAIN_URLCONF = "mcpauth_service.urls_domain"


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class CustomDomainMiddleware:
    """A request whose Host is a project's custom domain is served at the root for that project."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.public_host = _host_of(settings.PUBLIC_URL)

    def __call__(self, request):
        request.project = None
        host = request.get_host().rsplit(":", 1)[0].strip("[]").lower() if request.META.get("HTTP_HOST") else ""
        if host and host != self.public_host and host not in {"127.0.0.1", "localhost", "::1", "testserver"}:
            slug = Project.objects.cached_slug_for_domain(host)
            if slug:
                project = Project.objects.cached_by_slug(slug)
                if project is not None:
                    request.urlconf = DOMAIN_URLCONF
                    request.project = project
                    request.issuer = f"https://{project.custom_domain}"
        return self.get_response(request)


class TenantMiddleware:
    """Turns the `project_slug` URL argument into `request.project` and `request.issuer`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        slug = view_kwargs.pop("project_slug", None)
        if slug is None:
            return None
        project = Project.objects.cached_by_slug(slug)
        if project is None:
            raise Http404("unknown project")
        request.project = project
        request.issuer = project.issuer
        return None
