"""django-oauth-toolkit's models, swapped so every client and token belongs to one project."""

from django.db import models
from oauth2_provider.generators import generate_client_id
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
)


class Application(AbstractApplication):
    """An OAuth client of one project, however it got in (CIMD, open DCR, secret DCR, dashboard)."""

    class Path(models.TextChoices):
        CIMD = "cimd", "Client ID Metadata Document"
        OPEN = "open", "Open registration"
        SECRET = "secret", "Registered with a project secret"
        DASHBOARD = "dashboard", "Created in the dashboard"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="clients")
    # Unique per project, not globally: one CIMD URL (say, Claude's) is a client of many projects.
    client_id = models.CharField(max_length=255, default=generate_client_id, db_index=True)
    registration_path = models.CharField(max_length=16, choices=Path.choices, default=Path.DASHBOARD)
    # The RFC 7591 metadata as registered (client_uri, logo_uri, grant_types, scope, contacts, ...).
    metadata = models.JSONField(default=dict, blank=True)
    first_party = models.BooleanField(default=False)
    disabled_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Same software, name and redirect URIs hash alike: repeated registrations group as one.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        indexes = [models.Index(fields=["project", "registration_path"], name="client_project_path")]
        constraints = [models.UniqueConstraint(fields=["project", "client_id"], name="client_id_unique_per_project")]


class Grant(AbstractGrant):
    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class IDToken(AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class AccessToken(AbstractAccessToken):
    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"


class RefreshToken(AbstractRefreshToken):
    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"
