"""Operator API tokens for the management API: shown once, stored as lookup prefix + keyed digest."""


from django.conf import settings
from django.db import models
from django.utils import timezone

from projects import secrets as tokens
from projects.models import HashedCredential

OPERATOR_TOKEN_PREFIX = "mcpop_"


class OperatorToken(HashedCredential):
    """A bearer token (`mcpop_…`) that acts as its operator, with the operator's project roles."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")

    @classmethod
    def issue(cls, user, name: str) -> tuple["OperatorToken", str]:
        value = tokens.generate(OPERATOR_TOKEN_PREFIX)
        row = cls.objects.create(user=user, name=name, prefix=tokens.lookup_prefix(value),
                                 digest=tokens.digest(value))
        return row, value

    @classmethod
    def authenticate(cls, presented: str) -> "OperatorToken | None":
        """The live token matching `presented` whose operator may still sign in, else None."""
        if not presented.startswith(OPERATOR_TOKEN_PREFIX):
            return None
        candidates = cls.objects.select_related("user").filter(
            prefix=tokens.lookup_prefix(presented), revoked_at__isnull=True,
            user__is_active=True, user__project__isnull=True,
        )
        for row in candidates:
            if tokens.matches(presented, row.digest):
                row.touch()
                return row
        return None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
