// The official MCP TypeScript SDK v2 client (@modelcontextprotocol/client, unmodified): its
// CrossAppAccessProvider (Enterprise-Managed Authorization, SEP-990) against an MCP server protected
// by mcpauth.
//
//   node xaa_client.mjs <mcp server url> <issuer> <client id> <client secret>
//
// Speaks JSON lines with the test that runs it: when the SDK asks for an ID-JAG, prints
// {"assertion": {"audience", "resource", "scope"}} and reads back {"id_jag": "..."} (the test plays
// the company IdP and signs it); then calls a tool and prints {"done": ..., "log": [...]}.
// A recording fetch (the transport's `fetch` option) only observes the SDK's HTTP.
import readline from "node:readline";

import { Client, CrossAppAccessProvider, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [serverUrl, issuer, clientId, clientSecret] = process.argv.slice(2);
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

const provider = new CrossAppAccessProvider({
  clientId, clientSecret, expectedIssuer: issuer, fetchFn: recordingFetch,
  assertion: async ({ authorizationServerUrl, resourceUrl, scope }) => {
    emit({ assertion: { audience: authorizationServerUrl, resource: resourceUrl, scope: scope ?? null } });
    const { value } = await input.next();
    return JSON.parse(value).id_jag;
  },
});

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: "mcpauth-e2e-xaa", version: "1.0.0" });
  await client.connect(transport);
  const result = await client.callTool({ name: "whoami", arguments: {} });
  await client.close();
  emit({ done: result.structuredContent ?? JSON.parse(result.content[0].text), log,
         tokens: { refresh_token: provider.tokens()?.refresh_token ?? null } });
}

main().then(() => process.exit(0), (error) => {
  emit({ error: String(error?.stack ?? error), log });
  process.exit(1);
});
