// An OpenID Connect relying party built on panva's oauth4webapi, unmodified (run by
// tests/e2e/test_openid_connect_rp.py): discovery, dynamic registration, the code flow with `openid`
// and PKCE, ID token validation (signature against the issuer's JWKS, iss, aud, nonce, auth_time with
// max_age, at_hash where the library checks it), userinfo, and a refresh that returns a new ID token.
//
// usage: node oidc_rp.mjs ISSUER REDIRECT_URI ALG   (ALG: RS256 or ES256)
// It prints one JSON line {"authorize": url} per sign-in and reads the callback query (a JSON
// object) from stdin; it ends with {"done": {...}} or {"error": "..."}.
import * as readline from 'node:readline'
import * as oauth from 'oauth4webapi'

const [issuerUrl, redirectUri, alg] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // the issuer listens on http loopback in tests
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()

function say (message) { process.stdout.write(JSON.stringify(message) + '\n') }

async function callback (url) {
  say({ authorize: url.href })
  const { value } = await lines.next()
  return new URLSearchParams(JSON.parse(value))
}

async function main () {
  const issuer = new URL(issuerUrl)
  const as = await oauth.processDiscoveryResponse(
    issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))

  const registered = await oauth.processDynamicClientRegistrationResponse(
    await oauth.dynamicClientRegistrationRequest(as, {
      client_name: `oauth4webapi ${alg}`, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      id_token_signed_response_alg: alg
    }, insecure))
  const client = { client_id: registered.client_id, id_token_signed_response_alg: alg }
  const auth = oauth.None()

  const verifier = oauth.generateRandomCodeVerifier()
  const nonce = oauth.generateRandomNonce()
  const state = oauth.generateRandomState()
  const maxAge = 600
  const url = new URL(as.authorization_endpoint)
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code',
    scope: 'openid email profile offline_access', nonce, state, max_age: String(maxAge),
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256'
  })) url.searchParams.set(k, v)

  const params = oauth.validateAuthResponse(as, client, await callback(url), state)
  const tokenResponse = await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, verifier, insecure)
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse,
    { expectedNonce: nonce, maxAge, requireIdToken: true })
  await oauth.validateApplicationLevelSignature(as, tokenResponse, insecure)
  const claims = oauth.getValidatedIdTokenClaims(tokens)

  const userinfo = await oauth.processUserInfoResponse(as, client, claims.sub,
    await oauth.userInfoRequest(as, client, tokens.access_token, insecure))

  const refreshResponse = await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, insecure)
  const refreshed = await oauth.processRefreshTokenResponse(as, client, refreshResponse)
  await oauth.validateApplicationLevelSignature(as, refreshResponse, insecure)
  const refreshedClaims = oauth.getValidatedIdTokenClaims(refreshed)

  const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString())
  say({ done: { clientId: client.client_id, header, claims, userinfo, refreshedClaims, scope: tokens.scope } })
}

main().then(() => process.exit(0), (err) => {
  say({ error: `${err.name}: ${err.message}`, code: err.code, cause: err.cause && JSON.stringify(err.cause) })
  process.exit(1)
})
