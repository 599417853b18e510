"""The `mcp` SDK's TokenVerifier (and AuthSettings) backed by `ResourceServer` (RFC 9728, RFC 8707).

    rs = ResourceServer(issuer=..., resource="https://mcp.example.com/mcp", introspection_secret=...,
                        required_scopes=["mcp:tools"])
    server = MCPServer("My server", token_verifier=McpauthTokenVerifier(rs), auth=auth_settings(rs))

The SDK then serves the Protected Resource Metadata at `rs.metadata_url` and answers a request
without a good token with 401 and `WWW-Authenticate: Bearer ..., resource_metadata="..."`.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from .core import InsufficientScope, ResourceServer, TokenRejected, VerifiedToken, _same_url

logger = logging.getLogger("mcpauth_rs")


class McpauthTokenVerifier:
    """`mcp.server.auth.provider.TokenVerifier`: every check of `ResourceServer.verify`, off the event loop."""

    def __init__(self, resource_server: ResourceServer):
        self.resource_server = resource_server

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            verified = await anyio.to_thread.run_sync(self.resource_server.verify, token)
        except InsufficientScope as exc:
            # Hand the token over anyway: the SDK's RequireAuthMiddleware then answers 403
            # insufficient_scope (a step-up), not a 401 that would restart the whole flow.
            verified = exc.token
        except TokenRejected as exc:
            logger.info("bearer token refused: %s", exc)
            return None
        return self.access_token(token, verified)

    def access_token(self, token: str, verified: VerifiedToken) -> AccessToken:
        resource = next(a for a in verified.audience if _same_url(a, self.resource_server.resource))
        return AccessToken(
            token=token, client_id=verified.client_id, scopes=list(verified.scopes),
            expires_at=verified.expires_at, resource=resource, subject=verified.subject,
            claims={"iss": verified.issuer, **{k: v for k, v in verified.claims.items() if k in ("act", "jti")}},
        )


def auth_settings(resource_server: ResourceServer, **extra) -> AuthSettings:
    """AuthSettings naming our issuer in the PRM and enforcing the audience twice (ours and the SDK's)."""
    # Validated from strings so a path-less issuer keeps its exact form (no trailing slash).
    return AuthSettings.model_validate({
        "issuer_url": resource_server.issuer,
        "resource_server_url": resource_server.resource,
        "required_scopes": list(resource_server.required_scopes) or None,
        "validate_token_resource": True,
        **extra,
    })
