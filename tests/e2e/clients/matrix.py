"""The client-compatibility matrix: what each MCP client people use sends, and what we keep.

One entry per client. `sends` is the CIMD document or the DCR body exactly as the client sends
it (its source is cited next to it), `authorize` the request it then makes, `keeps` what this
project holds for it after registration (RFC 7591 §3.2.1: narrowed, not refused). The test
(`tests/e2e/clients/test_matrix.py`) replays each entry through the whole flow; `docs/clients.md`
is rendered from this table (`python -m tests.e2e.clients.render`) and a test keeps it current.

A new client is one new entry. What a replay must change to run on loopback is listed in
`rewritten` (a CIMD document's `client_id` must equal its URL, so it becomes the local TLS
server's URL; `jwks_uri` likewise), and nothing else of what the client sends is changed.
"""

from dataclasses import dataclass, field

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
CODE_FLOW = [AUTHORIZATION_CODE, REFRESH_TOKEN]

# Server features not yet in this branch: a client that `needs` one is an expected failure
# (xfail, strict: the marker must go the moment the case passes) and docs/clients.md says so.
# Empty since narrow-don't-refuse and native-app redirect schemes landed.
MISSING_FEATURES: dict[str, str] = {}


@dataclass(frozen=True)
class Authorize:
    """The authorization request as the client makes it (PKCE S256 and `state` always)."""

    redirect_uri: str
    scope: str | None = None  # None: the client sends no scope parameter
    resource: bool = True  # sends RFC 8707 `resource` = the MCP server URL
    prompt: str | None = None


@dataclass(frozen=True)
class Keeps:
    """What this project holds for the client after registration."""

    grant_types: list[str]
    auth_method: str
    dropped: dict[str, list[str]] = field(default_factory=dict)  # field -> values dropped (narrowed)
    redirect_uris: list[str] | None = None  # None: every URI the client sent is kept


@dataclass(frozen=True)
class Client:
    name: str
    way: str  # "cimd" or "dcr"
    sends: dict  # the CIMD document or the DCR body, as the client sends it
    sources: list[str]
    authorize: Authorize
    keeps: Keeps
    url: str = ""  # CIMD: the document's real URL (its client_id)
    rewritten: list[str] = field(default_factory=list)
    note: str = ""
    needs: str = ""  # a server feature the replay depends on (for docs and xfail reasons)

    @property
    def id(self) -> str:
        return self.name.lower().replace(" ", "-").replace("(", "").replace(")", "").replace(".", "")

    @property
    def missing(self) -> str:
        """Why this client does not complete the flow yet, or "" when it does."""
        return MISSING_FEATURES.get(self.needs, "")

    @property
    def auth_method_sent(self) -> str:
        return self.sends.get("token_endpoint_auth_method", "client_secret_basic")


CLIENTS: list[Client] = [
    Client(
        name="Claude Code",
        way="cimd",
        url="https://claude.ai/oauth/claude-code-client-metadata",
        sends={
            "client_id": "https://claude.ai/oauth/claude-code-client-metadata",
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        sources=[
            "https://github.com/sprawz/gtm-mcp-server/issues/72",  # the published document, verbatim
            "https://github.com/anthropics/claude-code/issues/37767",  # ephemeral port at authorize
            "https://github.com/anthropics/claude-code/issues/41011",
        ],
        # Registered without a port, used with an ephemeral one (RFC 8252 §7.3: any port on loopback).
        authorize=Authorize(redirect_uri="http://localhost:58135/callback", scope="mcp:tools offline_access"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        rewritten=["client_id: the local TLS server's URL"],
        note="CIMD since v2.1.81 (DCR before). The loopback port must be ignored although the registered URI has none.",
    ),
    Client(
        name="claude.ai",
        way="cimd",
        url="https://claude.ai/oauth/mcp-oauth-client-metadata",
        sends={
            "client_id": "https://claude.ai/oauth/mcp-oauth-client-metadata",
            "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": [AUTHORIZATION_CODE, REFRESH_TOKEN, JWT_BEARER],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        sources=[
            "https://github.com/anthropics/claude-ai-mcp/issues/487",  # the document with jwt-bearer
            "https://github.com/anthropics/claude-ai-mcp/issues/96",  # the authorize request
            "https://github.com/brendanlong/lion-reader/pull/1519",  # CIMD only with `none` advertised
        ],
        # The request carries scope "+offline_access" (a leading space), resource and prompt=consent.
        authorize=Authorize(redirect_uri="https://claude.ai/api/mcp/auth_callback", scope=" offline_access",
                            prompt="consent"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none", dropped={"grant_types": [JWT_BEARER]}),
        rewritten=["client_id: the local TLS server's URL"],
        note="The jwt-bearer grant (enterprise-managed authorization) is for a public client: dropped, not refused.",
        needs="narrow",
    ),
    Client(
        name="ChatGPT (older document)",
        way="cimd",
        url="https://chatgpt.com/oauth/a1b2c3/client.json",
        sends={
            "client_id": "https://chatgpt.com/oauth/a1b2c3/client.json",
            "client_uri": "https://chatgpt.com/",
            "redirect_uris": ["https://chatgpt.com/connector/oauth/a1b2c3"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "client_name": "ChatGPT",
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks_uri": "https://chatgpt.com/oauth/jwks.json",
        },
        sources=[
            "https://github.com/Altinity/altinity-mcp/issues/118",  # the document (<id> elided there)
            "https://github.com/engram-app/Engram/issues/1633",  # RSA signing key, kid cimd-<date>
        ],
        authorize=Authorize(redirect_uri="https://chatgpt.com/connector/oauth/a1b2c3", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="private_key_jwt"),
        rewritten=["client_id: the local TLS server's URL (the elided <id> is a1b2c3)",
                   "jwks_uri: the local TLS server's URL, serving a test RSA key (RS256)"],
        note="Authenticates at the token endpoint with an RS256 client assertion (RFC 7523).",
    ),
    Client(
        name="ChatGPT",
        way="cimd",
        url="https://chatgpt.com/oauth/client.json",
        sends={
            "client_id": "https://chatgpt.com/oauth/client.json",
            "client_uri": "https://chatgpt.com/",
            "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "client_name": "ChatGPT",
            "logo_uri": "https://persistent.oaistatic.com/sonic/misc/openai-logo.png",
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks_uri": "https://chatgpt.com/oauth/jwks.json",
        },
        sources=[
            "https://github.com/django-oauth/django-oauth-toolkit/issues/1845",  # the document
            "https://github.com/engram-app/Engram/issues/1633",  # does not fall back to `none`
        ],
        authorize=Authorize(redirect_uri="https://chatgpt.com/connector_platform_oauth_redirect", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="private_key_jwt"),
        rewritten=["client_id: the local TLS server's URL",
                   "jwks_uri: the local TLS server's URL, serving a test RSA key (RS256)"],
        note="Lists `none` as a fallback; we support private_key_jwt, so that is the method in force.",
    ),
    Client(
        name="VS Code (CIMD)",
        way="cimd",
        url="https://vscode.dev/oauth/client-metadata.json",
        sends={
            "client_name": "Visual Studio Code",
            "grant_types": [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "client_id": "https://vscode.dev/oauth/client-metadata.json",
            "client_uri": "https://vscode.dev/product",
            "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"],
        },
        sources=[
            "https://github.com/tableau/tableau-mcp/issues/199",  # the document, verbatim
            "https://github.com/stacklok/toolhive/issues/6290",  # refused over device_code elsewhere
            "https://github.com/microsoft/vscode/issues/282472",
        ],
        # VS Code sends the protected-resource metadata's `resource`, and the scopes it advertises.
        authorize=Authorize(redirect_uri="http://127.0.0.1:33418/", scope="mcp:tools"),
        keeps=Keeps(grant_types=[*CODE_FLOW, DEVICE_CODE], auth_method="none"),
        rewritten=["client_id: the local TLS server's URL"],
        note="Keeps device_code: the project offers the device authorization grant (RFC 8628), on by default; "
             "a project that turns it off drops it (narrowed, not refused).",
        needs="narrow",
    ),
    Client(
        name="VS Code (DCR)",
        way="dcr",
        sends={
            "client_name": "Visual Studio Code",
            "client_uri": "https://code.visualstudio.com",
            "grant_types": [AUTHORIZATION_CODE, REFRESH_TOKEN, DEVICE_CODE],
            "response_types": ["code"],
            "redirect_uris": ["https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                              "http://localhost/", "http://127.0.0.1/", "http://localhost:33418/",
                              "http://127.0.0.1:33418/"],
            "scope": "mcp:tools",
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        },
        sources=["https://github.com/modelcontextprotocol/python-sdk/issues/1379"],
        authorize=Authorize(redirect_uri="http://127.0.0.1:33418/", scope="mcp:tools"),
        keeps=Keeps(grant_types=[*CODE_FLOW, DEVICE_CODE], auth_method="none"),
        rewritten=["scope: read:data (that MCP server's scope) -> mcp:tools (this project's)"],
        needs="narrow",
    ),
    Client(
        name="Cursor",
        way="dcr",
        sends={
            "client_name": "Cursor",
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback",
                              "https://www.cursor.com/agents/mcp/oauth/callback",
                              "http://localhost:8787/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "web",
        },
        sources=[
            "https://github.com/erp-mafia/accounted/pull/2225",  # the three redirect URIs
            "https://github.com/different-ai/openwork/pull/3059",  # token_endpoint_auth_method none
            "https://github.com/elie222/inbox-zero/pull/3780",  # application_type web with cursor://
            "https://cursor.com/docs/context/mcp",
        ],
        authorize=Authorize(redirect_uri="cursor://anysphere.cursor-mcp/oauth/callback", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        note="A single-word private-use scheme (RFC 8252 §7.1) next to https and loopback URIs.",
        needs="redirect",
    ),
    Client(
        name="Windsurf",
        way="dcr",
        sends={
            "client_name": "Windsurf",
            "redirect_uris": ["windsurf://codeium.windsurf/oauth/callback", "http://127.0.0.1:29170/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        sources=[
            "https://github.com/actionhero/keryx/pull/502",  # Windsurf completes OAuth via a private-use scheme
            "https://github.com/trypostit/trypost/pull/336",
            "https://github.com/Mermaid-Chart/issue-tracker/issues/145",  # Windsurf's own windsurf: scheme
        ],
        authorize=Authorize(redirect_uri="windsurf://codeium.windsurf/oauth/callback", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        note="Closed source and no captured body is published: this body is reconstructed from the cited "
             "threads (a VS Code fork using its own windsurf: scheme, public client), not copied from a capture.",
        needs="redirect",
    ),
    Client(
        name="Codex CLI",
        way="dcr",
        sends={
            "client_name": "Codex",
            "redirect_uris": ["http://127.0.0.1:37819/callback/VfU2Jf9k0aQh"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        },
        sources=[
            "https://github.com/openai/codex/blob/main/codex-rs/rmcp-client/src/perform_oauth_login.rs",
            "https://github.com/elmohq/elmo/pull/684",  # captured: native, ephemeral /callback/<id>
        ],
        authorize=Authorize(redirect_uri="http://127.0.0.1:37819/callback/VfU2Jf9k0aQh", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        note="The callback path ends in a per-server id (base64url of the server URL's hash).",
    ),
    Client(
        name="Gemini CLI",
        way="dcr",
        sends={
            "client_name": "Gemini CLI MCP Client",
            "redirect_uris": ["http://localhost:7777/oauth/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "",
        },
        sources=["https://github.com/google-gemini/gemini-cli/blob/main/packages/core/src/mcp/oauth-provider.ts"],
        authorize=Authorize(redirect_uri="http://localhost:7777/oauth/callback"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        note="Registers an empty scope string and sends no scope at authorize (the project's defaults apply).",
    ),
    Client(
        name="MCP Inspector",
        way="dcr",
        sends={
            "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
            "token_endpoint_auth_method": "none",
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "client_name": "MCP Inspector",
            "client_uri": "https://github.com/modelcontextprotocol/inspector",
            "scope": "",
        },
        sources=["https://github.com/modelcontextprotocol/inspector/blob/main/client/src/lib/auth.ts"],
        authorize=Authorize(redirect_uri="http://localhost:6274/oauth/callback/debug",
                            scope="mcp:tools mcp:resources mcp:prompts offline_access"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        note="Asks for every scope in scopes_supported.",
    ),
    Client(
        name="Goose",
        way="cimd",
        url="https://goose-docs.ai/oauth/client-metadata.json",
        sends={
            "client_id": "https://goose-docs.ai/oauth/client-metadata.json",
            "client_name": "goose",
            "redirect_uris": ["http://127.0.0.1/oauth_callback", "http://[::1]/oauth_callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "code_challenge_methods_supported": ["S256"],
        },
        sources=[
            "https://github.com/block/goose/blob/main/crates/goose/src/oauth/mod.rs",  # URL and redirect
            "https://goose-docs.ai/oauth/client-metadata.json",
        ],
        authorize=Authorize(redirect_uri="http://127.0.0.1:51422/oauth_callback", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
        rewritten=["client_id: the local TLS server's URL"],
        note="CIMD when the metadata says client_id_metadata_document_supported, DCR (client_name goose) otherwise.",
    ),
    Client(
        name="opencode",
        way="dcr",
        sends={
            "redirect_uris": ["http://127.0.0.1:19876/mcp/oauth/callback"],
            "client_name": "OpenCode",
            "client_uri": "https://opencode.ai",
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
        sources=["https://github.com/anomalyco/opencode/blob/dev/packages/opencode/src/mcp/oauth-provider.ts"],
        authorize=Authorize(redirect_uri="http://127.0.0.1:19876/mcp/oauth/callback"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none"),
    ),
    Client(
        name="Python SDK",
        way="dcr",
        sends={
            "client_name": "Simple Auth Client",
            "redirect_uris": ["http://localhost:3030/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
        },
        sources=["https://github.com/modelcontextprotocol/python-sdk/blob/main/examples/clients/"
                 "simple-auth-client/mcp_simple_auth_client/main.py"],
        authorize=Authorize(redirect_uri="http://localhost:3030/callback", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none",
                    dropped={"token_endpoint_auth_method": ["client_secret_post"]}),
        note="Open DCR registers public clients: client_secret_post becomes none (the 201 says so, the SDK follows).",
        needs="narrow",
    ),
    Client(
        name="TypeScript SDK",
        way="dcr",
        sends={
            "client_name": "Simple OAuth MCP Client",
            "redirect_uris": ["http://localhost:8090/callback"],
            "grant_types": CODE_FLOW,
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "mcp:tools",
        },
        sources=["https://github.com/modelcontextprotocol/typescript-sdk/blob/main/src/examples/client/"
                 "simpleOAuthClient.ts"],
        authorize=Authorize(redirect_uri="http://localhost:8090/callback", scope="mcp:tools"),
        keeps=Keeps(grant_types=CODE_FLOW, auth_method="none",
                    dropped={"token_endpoint_auth_method": ["client_secret_post"]}),
        note="Open DCR registers public clients: client_secret_post becomes none (the 201 says so, the SDK follows).",
        needs="narrow",
    ),
]
