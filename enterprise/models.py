"""A project's trusted enterprise issuers (ID-JAG, RFC 7523 jwt-bearer) and the identities they link."""

from django.conf import settings
from django.db import models

from projects.models import Project

# draft-ietf-oauth-identity-assertion-authz-grant: asymmetric signatures only (never none or HMAC).
ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256", "ES384", "EdDSA")
DEFAULT_ALGORITHMS = ["RS256", "ES256"]


def default_algorithms() -> list[str]:
    return list(DEFAULT_ALGORITHMS)


class TrustedIssuerQuerySet(models.QuerySet):
    def of(self, project: Project) -> "TrustedIssuerQuerySet":
        return self.filter(project=project)


class TrustedIssuer(models.Model):
    """An enterprise IdP whose ID-JAGs this project accepts, and the policy around them.

    - keys: `jwks` (inline JWK Set) or `jwks_uri` (fetched through the SSRF-safe wrapper, cached);
    - `algorithms`: the JWS algorithms accepted from it (a subset of ALLOWED_ALGORITHMS);
    - `client_ids`: the clients that may present its assertions (empty: any client of the project
      registered for the jwt-bearer grant);
    - `scopes`: what it may grant (empty: the scopes a client of the project gets by default);
    - `provision`: an unknown person (no link, no end user with the verified email) gets a new end
      user instead of `invalid_grant`;
    - `refresh_tokens`: also issue a refresh token (off: the client presents a fresh ID-JAG).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="trusted_issuers")
    issuer = models.CharField(max_length=2000)
    jwks_uri = models.URLField(max_length=2000, blank=True)
    jwks = models.JSONField(null=True, blank=True)
    algorithms = models.JSONField(default=default_algorithms)
    client_ids = models.JSONField(default=list, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    provision = models.BooleanField(default=False)
    refresh_tokens = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=320, blank=True)

    objects = TrustedIssuerQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "issuer"], name="trusted_issuer_unique_per_project")]

    def __str__(self) -> str:
        return self.issuer

    def allows_client(self, client_id: str) -> bool:
        return not self.client_ids or client_id in self.client_ids


class EnterpriseIdentity(models.Model):
    """The end user an issuer's `sub` stands for, linked the first time it is seen."""

    trusted_issuer = models.ForeignKey(TrustedIssuer, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enterprise_identities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trusted_issuer", "subject"],
                                               name="enterprise_identity_unique_subject")]
