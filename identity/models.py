"""A project's upstream identity providers and the identities they link to its end users."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from projects import keys
from projects.models import Project


class Kind(models.TextChoices):
    GITHUB = "github", "GitHub"
    GOOGLE = "google", "Google"
    MICROSOFT = "microsoft", "Microsoft"
    OIDC = "oidc", "OpenID Connect"


class IdentityProviderQuerySet(models.QuerySet):
    def of(self, project: Project) -> "IdentityProviderQuerySet":
        return self.filter(project=project)

    def enabled(self, project: Project) -> "IdentityProviderQuerySet":
        return self.filter(project=project, enabled=True).order_by("name", "pk")


class IdentityProvider(models.Model):
    """One upstream provider of one project: our client's credentials there and the policy around it.

    - `issuer`: oidc, the issuer whose discovery document is read; microsoft, the tenant
      (`common`, `organizations`, or a tenant id or domain); unused for github and google;
    - `scopes`: asked for on top of the kind's own (`openid email profile`, GitHub's `read:user user:email`);
    - `domains`: email domains this provider is for (the sign-in page sends such an email there);
    - `create_accounts`: a person nobody linked yet gets a new end user (off: existing accounts only).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="identity_providers")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=500)
    client_secret_encrypted = models.TextField()  # KEY_ENCRYPTION_KEY, like SigningKey's private key
    issuer = models.CharField(max_length=2000, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    domains = models.JSONField(default=list, blank=True)
    create_accounts = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IdentityProviderQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    @property
    def client_secret(self) -> str:
        return keys.decrypt(self.client_secret_encrypted).decode()

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.client_secret_encrypted = keys.encrypt(value.encode())

    @property
    def callback_url(self) -> str:
        """The redirect URI to register at the upstream: one per project, whichever provider."""
        return callback_url(self.project)

    def serves(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return bool(domain) and domain in self.domains


keys.encrypted_columns("identity.IdentityProvider", "client_secret_encrypted")


def callback_url(project: Project) -> str:
    return f"{project.issuer}/oauth/upstream/callback"


class UpstreamIdentity(models.Model):
    """A person at an upstream provider, linked to one end user: keyed by (provider, subject), never by email."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upstream_identities")
    email = models.EmailField(max_length=254, blank=True)  # as last seen upstream
    email_verified = models.BooleanField(default=False)  # as last said upstream
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "subject"], name="one_identity_per_upstream_subject")]

    def __str__(self) -> str:
        return f"{self.provider.name}: {self.email or self.subject}"
