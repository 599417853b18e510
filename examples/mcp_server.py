"""An MCP server (official `mcp` SDK, MCPServer) protected by one mcpauth project (RFC 9728, RFC 8707).

    MCPAUTH_INTROSPECTION_SECRET=mcps_... \\
    python examples/mcp_server.py --issuer http://127.0.0.1:8000/p/demo --port 8765

- serves its Protected Resource Metadata (RFC 9728) at
  `http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp`, naming the issuer;
- answers a call without a good token with `401` and
  `WWW-Authenticate: Bearer ..., resource_metadata="<that URL>"`;
- accepts a token only when our issuer says it is active (introspection, opaque tokens) or its
  signature checks out against the issuer's JWKS (JWT tokens), and `iss`, `aud` (this server's
  own URL), `exp` and the required scopes hold (`mcpauth_rs.ResourceServer`).

Environment instead of flags: MCPAUTH_ISSUER, MCPAUTH_RESOURCE, MCPAUTH_INTROSPECTION_SECRET
(a project secret holding `introspect`), MCPAUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: find mcpauth_rs

import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from mcpauth_rs import ResourceServer
from mcpauth_rs.mcp import McpauthTokenVerifier, auth_settings


def build_server(resource_server: ResourceServer) -> MCPServer:
    server = MCPServer(
        "mcpauth example",
        instructions="A demo MCP server protected by mcpauth.",
        token_verifier=McpauthTokenVerifier(resource_server),
        auth=auth_settings(resource_server),
    )

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Who the access token says is calling.")
    def whoami() -> dict:
        token = get_access_token()
        if token is None:  # unreachable behind RequireAuthMiddleware; kept for clarity
            return {}
        return {"subject": token.subject, "client_id": token.client_id, "scopes": token.scopes,
                "resource": token.resource}

    return server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", default=os.environ.get("MCPAUTH_ISSUER"), help="the project's issuer URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8765")))
    parser.add_argument("--resource", default=os.environ.get("MCPAUTH_RESOURCE"),
                        help="this server's URL as registered in the project (default http://HOST:PORT/mcp)")
    parser.add_argument("--scope", action="append", default=None, help="required scope (default mcp:tools)")
    parser.add_argument("--token-format", choices=["auto", "opaque", "jwt"], default="auto")
    parser.add_argument("--check-revocation", action="store_true",
                        help="JWTs: ask introspection too, so a revoked JWT stops working at once")
    parser.add_argument("--cache-seconds", type=float,
                        default=float(os.environ.get("MCPAUTH_CACHE_SECONDS", "10")),
                        help="how long an introspection answer is reused (0: ask every time)")
    args = parser.parse_args(argv)
    if not args.issuer:
        parser.error("--issuer (or MCPAUTH_ISSUER) is required")
    args.resource = args.resource or f"http://{args.host}:{args.port}/mcp"
    args.scope = args.scope or ["mcp:tools"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s %(message)s")
    resource_server = ResourceServer(
        issuer=args.issuer, resource=args.resource, required_scopes=args.scope,
        introspection_secret=os.environ.get("MCPAUTH_INTROSPECTION_SECRET") or None,
        token_format=args.token_format, check_revocation=args.check_revocation,
        cache_seconds=args.cache_seconds, resource_name="mcpauth example",
    )
    app = build_server(resource_server).streamable_http_app(host=args.host)
    print(f"MCP server {args.resource}  (metadata: {resource_server.metadata_url})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
