// The benchmark's reference peer (docs/performance.md): node oidc-provider, one process, every
// artifact in this process's memory, with the features our service offers: client credentials,
// authorization code with PKCE (S256), refresh (rotating for public clients), introspection,
// revocation and open dynamic registration.
//
//   node bench/peer/server.js --port 8098 --admin-port 8099
//
// The admin port (loopback) lets bench/run.py prepare what the scenarios spend, through the
// provider's own models: `GET /seed?kind=codes|refresh|access|revocable&n=N` answers one JSON
// array of value lines (the same fields our service's value files hold), `GET /clients` the
// static clients. Nothing here is ever served on the provider's port.
import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8098' },
    'admin-port': { type: 'string', default: '8099' },
  },
});
const ISSUER = `http://127.0.0.1:${args.port}`;
const REDIRECT_URI = 'http://127.0.0.1:33418/callback';
const ACCOUNT = 'bench-user';

// An unbounded in-memory adapter. The package's own memory adapter is an LRU of 1,000 entries:
// prepared codes and tokens would be evicted by the ones the bench issues.
const store = new Map();
const grantMembers = new Map();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload, expiresAt });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid() {
    return undefined; // sessions are not used: no browser flow is measured
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) || []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

function secret() {
  return `mcpcs_${crypto.randomBytes(32).toString('base64url')}`;
}

// The same client set as bench/seed.py: 20 client_credentials clients, a public code+refresh
// client, a confidential client whose tokens are revoked, one that introspects.
const confidential = (id) => ({
  client_id: id,
  client_secret: secret(),
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
});
const CLIENTS = [
  ...Array.from({ length: 20 }, (_, i) => confidential(`bench-service-${i}`)),
  confidential('bench-revoker'),
  confidential('bench-introspector'),
  {
    client_id: 'bench-public',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none',
  },
];

const signingKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  .export({ format: 'jwk' });

const provider = new Provider(ISSUER, {
  adapter: MapAdapter,
  clients: CLIENTS,
  // The one key is ES256, as ours: clients default to it (the package's default is RS256).
  clientDefaults: { grant_types: ['authorization_code'], id_token_signed_response_alg: 'ES256', response_types: ['code'] },
  jwks: { keys: [{ ...signingKey, alg: 'ES256', use: 'sig', kid: 'bench' }] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true }, // open: no initial access token, as ours
  },
  pkce: { methods: ['S256'], required: () => true },
  // Refresh tokens for every client allowed the grant (ours: no OpenID Connect scopes involved).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    ClientCredentials: 3600,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
});

// --- preparing what the scenarios spend, through the provider's models ------------------------

function basic(client) {
  const pair = `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}

async function newGrant(clientId) {
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId });
  grant.addOIDCScope('offline_access');
  return grant.save();
}

async function codeLine(client) {
  const verifier = crypto.randomBytes(48).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const code = new provider.AuthorizationCode({
    accountId: ACCOUNT,
    client,
    grantId: await newGrant(client.clientId),
    redirectUri: REDIRECT_URI,
    scope: 'offline_access',
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
  });
  return [await code.save(), verifier, encodeURIComponent(REDIRECT_URI), client.clientId];
}

async function refreshLine(client) {
  const token = new provider.RefreshToken({
    accountId: ACCOUNT,
    client,
    grantId: await newGrant(client.clientId),
    gty: 'authorization_code',
    scope: 'offline_access',
    rotations: 0,
  });
  return [await token.save(), client.clientId];
}

async function accessValue(client) {
  return new provider.ClientCredentials({ client }).save();
}

const byId = Object.fromEntries(CLIENTS.map((c) => [c.client_id, c]));

async function seed(kind, n) {
  const find = (id) => provider.Client.find(id);
  const lines = [];
  if (kind === 'codes') {
    const client = await find('bench-public');
    for (let i = 0; i < n; i += 1) lines.push(await codeLine(client));
  } else if (kind === 'refresh') {
    const client = await find('bench-public');
    for (let i = 0; i < n; i += 1) lines.push(await refreshLine(client));
  } else if (kind === 'access') { // introspected by bench-introspector
    const client = await find('bench-service-0');
    const auth = basic(byId['bench-introspector']);
    for (let i = 0; i < n; i += 1) lines.push([auth, await accessValue(client)]);
  } else if (kind === 'revocable') { // revoked by their own client
    const client = await find('bench-revoker');
    const auth = basic(byId['bench-revoker']);
    for (let i = 0; i < n; i += 1) lines.push([auth, await accessValue(client)]);
  } else {
    throw new Error(`unknown kind ${kind}`);
  }
  return lines;
}

const admin = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  try {
    let body;
    if (url.pathname === '/seed') {
      body = await seed(url.searchParams.get('kind'), Number(url.searchParams.get('n') || '1'));
    } else if (url.pathname === '/clients') {
      body = CLIENTS.filter((c) => c.client_secret).map((c) => ({ client_id: c.client_id, basic: basic(c) }));
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err && err.stack));
  }
});

admin.listen(Number(args['admin-port']), '127.0.0.1');
provider.listen(Number(args.port), '127.0.0.1');
