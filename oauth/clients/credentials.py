"""Project-secret bearer authentication (API.md "Project secrets"), RFC 6750 error shape."""

from django.http import HttpRequest

from oauth.errors import InvalidToken
from projects.models import ProjectSecret


def bearer_token(request: HttpRequest) -> str | None:
    """The credential of an `Authorization: Bearer …` header, or None when there is none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_secret(request: HttpRequest, permission: str) -> ProjectSecret:
    """The request's project secret holding `permission`; any other case is 401 invalid_token.

    A secret of another project, a revoked one, or one missing the permission are refused
    alike, so the answer tells a prober nothing about which it was.
    """
    presented = bearer_token(request)
    if presented is None:
        raise InvalidToken("A project secret is required.", reason="no bearer credential")
    secret = ProjectSecret.authenticate(request.project, presented, permission)
    if secret is None:
        raise InvalidToken("The project secret is not valid here.", reason=f"secret refused for {permission}")
    return secret
