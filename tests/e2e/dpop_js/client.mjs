// panva's oauth4webapi, unmodified, as a DPoP client (RFC 9449) of mcpauth and of a resource server
// that checks DPoP with mcpauth_rs.
//
//   node client.mjs '<json config>'
//
// config: {issuer, resource, protected, confidential: {clientId, clientSecret}, public: {clientId, redirectUri}}
// Speaks JSON lines with the test that runs it: prints {"authorize": url} and reads back the
// redirect's query (obtained by a headless end user), then prints {"done": {...}}.
// Flows, each with its own key pair and the library's own nonce handling (retry on use_dpop_nonce):
//   1. client_credentials (confidential client), then a protected resource request;
//   2. authorization code with PKCE (public client), a refresh, then a protected resource request.
import readline from "node:readline";

import * as oauth from "oauth4webapi";

const config = JSON.parse(process.argv[2]);
const lines = readline.createInterface({ input: process.stdin });
const input = lines[Symbol.asyncIterator]();
const emit = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const insecure = { [oauth.allowInsecureRequests]: true }; // loopback HTTP in the test only

// RFC 9449 §8/§9: the first try may be answered use_dpop_nonce; the DPoP handle keeps the nonce.
async function withNonceRetry(attempt) {
  try {
    return await attempt();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return attempt();
    throw err;
  }
}

async function callResource(accessToken, DPoP) {
  const response = await withNonceRetry(() =>
    oauth.protectedResourceRequest(accessToken, "POST", new URL(config.protected), new Headers(),
      JSON.stringify({ hello: "world" }), { DPoP, ...insecure }));
  return { status: response.status, body: await response.json() };
}

async function clientCredentials(as) {
  const client = { client_id: config.confidential.clientId };
  const auth = oauth.ClientSecretBasic(config.confidential.clientSecret);
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
  const tokens = await withNonceRetry(async () => {
    const response = await oauth.clientCredentialsGrantRequest(as, client, auth,
      { resource: config.resource }, { DPoP, ...insecure });
    return oauth.processClientCredentialsResponse(as, client, response);
  });
  return { tokenType: tokens.token_type, accessToken: tokens.access_token,
           resource: await callResource(tokens.access_token, DPoP) };
}

async function authorizationCode(as) {
  const client = { client_id: config.public.clientId };
  const auth = oauth.None();
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair("ES256"));
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  for (const [name, value] of Object.entries({
    client_id: client.client_id, redirect_uri: config.public.redirectUri, response_type: "code",
    scope: "mcp:tools offline_access", resource: config.resource, state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
  })) url.searchParams.set(name, value);
  emit({ authorize: url.href });
  const { value } = await input.next();
  const params = oauth.validateAuthResponse(as, client, new URLSearchParams(JSON.parse(value)), state);
  const first = await withNonceRetry(async () => {
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, params,
      config.public.redirectUri, verifier, { DPoP, ...insecure });
    return oauth.processAuthorizationCodeResponse(as, client, response);
  });
  const refreshed = await withNonceRetry(async () => {
    const response = await oauth.refreshTokenGrantRequest(as, client, auth, first.refresh_token,
      { DPoP, ...insecure });
    return oauth.processRefreshTokenResponse(as, client, response);
  });
  return { tokenType: first.token_type, refreshedTokenType: refreshed.token_type,
           refreshToken: first.refresh_token, accessToken: refreshed.access_token,
           resource: await callResource(refreshed.access_token, DPoP) };
}

try {
  const issuer = new URL(config.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer,
    { algorithm: "oauth2", ...insecure }));
  emit({ done: { algs: as.dpop_signing_alg_values_supported,
                 clientCredentials: await clientCredentials(as), authorizationCode: await authorizationCode(as) } });
} catch (err) {
  emit({ error: `${err.name}: ${err.message}`, cause: String(err.cause?.error ?? err.cause ?? "") });
  process.exitCode = 1;
} finally {
  lines.close(); // stdin would keep the process alive
}
