// An upstream OpenID provider we did not write, for tests/e2e/test_upstream_oidc.py: node
// oidc-provider with its development interactions (any login, any password), over HTTPS with the
// test's own certificate, on 127.0.0.1.
//
//   node idp.js --port P --cert leaf.pem --key leaf.key --client-id ID --client-secret S --redirect-uri URL
//
// The login typed at its sign-in page is the account: its email is the login (or login@example.com),
// verified unless the login starts with "unverified-". Prints {"ready": issuer} once listening.
import fs from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
  },
});
const ISSUER = `https://127.0.0.1:${args.port}`;

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: [args['redirect-uri']],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false, // the scopes' claims in the ID token itself, not only at userinfo
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['idp-test-cookie-key'] },
  async findAccount(ctx, id) {
    const login = id.replace(/^unverified-/, '');
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: login.includes('@') ? login : `${login}@example.com`,
          email_verified: !id.startsWith('unverified-'),
          name: login,
        };
      },
    };
  },
});

https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, provider.callback())
  .listen(Number(args.port), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ ready: ISSUER })}\n`);
  });
