// The official MCP TypeScript SDK, unmodified, as the client of an MCP server protected by mcpauth.
//
//   node client.mjs <mcp server url> <redirect uri>
//
// Speaks JSON lines with the test that runs it: prints {"authorize": url} when the SDK sends the
// user to the authorization endpoint, reads back {"code", "state", "iss"} (the redirect's query,
// obtained by a headless end user), finishes the flow, calls a tool and prints {"done": ...}.
// A recording fetch (passed through the transport's `fetch` option) only observes the SDK's HTTP.
import { randomBytes } from "node:crypto";
import readline from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [serverUrl, redirectUrl] = process.argv.slice(2);
const input = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const emit = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const log = [];

async function recordingFetch(url, init = {}) {
  const response = await fetch(url, init);
  const body = typeof init.body === "string" || init.body instanceof URLSearchParams ? String(init.body) : "";
  log.push({ method: init.method ?? "GET", url: String(url), status: response.status,
             form: body.includes("grant_type=") ? Object.fromEntries(new URLSearchParams(body)) : {} });
  return response;
}

// The app's side of the SDK's OAuthClientProvider interface: storage in memory, and a "browser".
class InMemoryProvider {
  constructor() {
    this.authorizationUrls = [];
    this.callback = undefined;
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: "mcpauth e2e (TypeScript SDK)", redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"], response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() { this._state = randomBytes(24).toString("base64url"); return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(verifier) { this._verifier = verifier; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(url) {
    this.authorizationUrls.push(String(url));
    emit({ authorize: String(url) });
    const { value } = await input.next();
    this.callback = JSON.parse(value);
  }
}

async function connect(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: "mcpauth-e2e-ts", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

async function main() {
  const provider = new InMemoryProvider();
  let connection;
  try {
    connection = await connect(provider);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    const { code, state, error: refused } = provider.callback ?? {};
    if (refused || !code) throw new Error(`authorization failed: ${JSON.stringify(provider.callback)}`);
    if (state !== provider._state) throw new Error("state mismatch");
    const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: recordingFetch });
    await transport.finishAuth(code);
    connection = await connect(provider);
  }
  const result = await connection.client.callTool({ name: "whoami", arguments: {} });
  await connection.client.close();
  emit({
    done: {
      result, log, authorizationUrls: provider.authorizationUrls, callback: provider.callback,
      clientId: provider._client?.client_id, accessToken: provider._tokens?.access_token,
    },
  });
}

main().then(() => process.exit(0), (error) => {
  emit({ error: String(error?.stack ?? error), log });
  process.exit(1);
});
