"""PROVIDERS: one entry per upstream kind, the registry everyone reads (the sign-in page, the
callback, the dashboard, the management API, `createidentityprovider`). Adding a kind is one module
and one entry here (docs/architecture.md, "Adding an identity provider")."""

from identity.models import IdentityProvider
from identity.providers.base import Leg, Profile, Provider, UpstreamRefused
from identity.providers.github import GitHub
from identity.providers.oidc import Google, Microsoft, Oidc

PROVIDERS: dict[str, type[Provider]] = {p.kind: p for p in (GitHub, Google, Microsoft, Oidc)}


def provider_for(row: IdentityProvider) -> Provider:
    return PROVIDERS[row.kind](row)


__all__ = ["PROVIDERS", "Leg", "Profile", "Provider", "UpstreamRefused", "provider_for"]
