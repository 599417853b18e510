"""Upstream identity providers, per project: end users sign in with GitHub, Google, Microsoft or any
OpenID Connect provider (docs/identity.md). Imports infra/ and projects/ only; oauth/ calls in."""
