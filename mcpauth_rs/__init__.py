"""Resource-server checks for MCP servers protected by mcpauth (RFC 7662, RFC 9068, RFC 8707, RFC 9728).

    from mcpauth_rs import ResourceServer
    rs = ResourceServer(issuer="https://auth.example.com/p/acme", resource="https://mcp.example.com/mcp",
                        introspection_secret="mcps_...", required_scopes=["mcp:tools"])
    token = rs.verify(bearer)        # VerifiedToken, or raises TokenRejected / InsufficientScope
    # DPoP-bound tokens (RFC 9449): ResourceServer(..., dpop=True), then per request
    token = rs.verify_request(authorization_header, method="POST", url=public_url, dpop=dpop_header)
    headers = rs.challenge(refused)  # WWW-Authenticate (Bearer or DPoP) and DPoP-Nonce for a refusal
    # JWT projects: refuse revoked JWTs within 30 s by polling the issuer's revocation feed
    rs = ResourceServer(..., token_format="jwt", revocation_feed_secret="mcps_...", revocation_poll_seconds=30)

Adapters: `mcpauth_rs.mcp.McpauthTokenVerifier` (the `mcp` SDK's TokenVerifier) and
`mcpauth_rs.drf.McpauthAuthentication` (Django REST framework). Only the standard library and
`jwcrypto` are needed here; each adapter imports its framework lazily.
"""

from .core import DpopNonceRequired, DpopProofRejected, InsufficientScope, ResourceServer, TokenRejected, VerifiedToken

__all__ = ["DpopNonceRequired", "DpopProofRejected", "InsufficientScope", "ResourceServer", "TokenRejected",
           "VerifiedToken"]
