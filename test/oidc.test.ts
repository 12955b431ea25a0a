import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { Authenticator } from '../src/auth/context.ts';
import { OidcVerifier } from '../src/auth/tokens.ts';
import { Database } from '../src/db/database.ts';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, signUp, type GqlResponse } from './support/client.ts';

const AUDIENCE = 'tenantplane';
const KID = 'test-rs256-1';

/** A stand-in identity provider (Keycloak-like paths): a JWKS and a discovery document, with request counts. */
let idp: http.Server;
let base: string;
let signer: { privateKey: CryptoKey; publicJwk: JWK };
const hits = new Map<string, number>();

let app: TestApp;
let issuer: string;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  signer = { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' } };
  idp = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const realm = /^\/realms\/([a-z]+)\/(.*)$/.exec(path);
    if (realm?.[2] === 'protocol/openid-connect/certs') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [signer.publicJwk] }));
    } else if (realm?.[2] === '.well-known/openid-configuration') {
      const iss = `${base}/realms/${realm[1]}`;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ issuer: iss, jwks_uri: `${iss}/protocol/openid-connect/certs`, id_token_signing_alg_values_supported: ['RS256'] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  issuer = `${base}/realms/test`;
  app = await startTestApp({ OIDC_ISSUER: issuer, OIDC_AUDIENCE: AUDIENCE, OIDC_JWKS_URI: `${issuer}/protocol/openid-connect/certs` });
});
afterAll(async () => {
  await app?.stop();
  await new Promise((resolve) => idp?.close(resolve));
});

interface Claims {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  aud?: string;
  iss?: string;
  exp?: number;
  key?: CryptoKey;
  kid?: string;
}

let counter = 0;
function identity() {
  counter++;
  return { sub: `kc-${process.pid}-${Date.now()}-${counter}`, email: `oidc-${process.pid}-${Date.now()}-${counter}@example.test` };
}

function idpToken(c: Claims, iss = issuer) {
  const now = Math.floor(Date.now() / 1000);
  const { key, kid, exp, ...claims } = c;
  return new SignJWT({ email_verified: true, name: 'Kay Cloak', preferred_username: 'kay', aud: AUDIENCE, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: kid ?? KID, typ: 'JWT' })
    .setIssuer(c.iss ?? iss)
    .setIssuedAt(now - 30)
    .setExpirationTime(exp ?? now + 300)
    .sign(key ?? signer.privateKey);
}

const ME = `{ me { id email name platformRole } }`;

function only(r: GqlResponse) {
  expect(r.errors, JSON.stringify(r)).toHaveLength(1);
  return r.errors![0]!;
}

async function usersWithEmail(databaseUrl: string, email: string) {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query(`select id from app_public.users where email = $1`, [email]);
    return rows.map((r) => r.id as string);
  } finally {
    await c.end();
  }
}

describe('OIDC tokens (explicit JWKS URI)', () => {
  let reference: { message: string; status: number };
  beforeAll(async () => {
    const r = await new Gql(app, 'garbage').request(ME);
    reference = { message: only(r).message, status: r.status };
    expect(only(r).extensions?.code).toBe('UNAUTHENTICATED');
  });

  async function expectRefused(token: string) {
    const r = await new Gql(app, token).request(ME);
    const e = only(r);
    expect(e.extensions?.code).toBe('UNAUTHENTICATED');
    expect(e.message).toBe(reference.message);
    expect(r.status).toBe(reference.status);
  }

  it('creates the user on first use and maps (iss, sub) to the same user afterwards', async () => {
    const who = identity();
    expect(await usersWithEmail(app.databaseUrl, who.email)).toEqual([]);

    const first = await new Gql(app, await idpToken({ ...who, name: 'Kay Cloak' })).ok(ME);
    expect(first.me).toMatchObject({ email: who.email, name: 'Kay Cloak', platformRole: 'NONE' });
    expect(await usersWithEmail(app.databaseUrl, who.email)).toHaveLength(1);

    const second = await new Gql(app, await idpToken(who)).ok(ME);
    expect(second.me.id).toBe(first.me.id);
    // Same subject with a changed email at the provider: still the same account (identity is (iss, sub)).
    const renamed = await new Gql(app, await idpToken({ sub: who.sub, email: `renamed-${who.email}` })).ok(ME);
    expect(renamed.me.id).toBe(first.me.id);
    expect(await usersWithEmail(app.databaseUrl, `renamed-${who.email}`)).toEqual([]);
  });

  it('records the (iss, sub) → user link in the database', async () => {
    const who = identity();
    const first = await new Gql(app, await idpToken(who)).ok(ME);
    const c = new pg.Client({ connectionString: app.databaseUrl });
    await c.connect();
    try {
      const { rows } = await c.query(`select user_id from app_private.user_identities where issuer = $1 and subject = $2`, [issuer, who.sub]);
      expect(rows).toHaveLength(1);
      const [, uuid] = Buffer.from(first.me.id, 'base64').toString().split(':');
      expect(rows[0].user_id).toBe(uuid);
    } finally {
      await c.end();
    }
    // Another instance (empty in-memory cache) resolves the same identity through the database to the same user.
    const fresh = new Authenticator(app.services.tokens, app.services.db, new OidcVerifier(app.services.config.auth.oidc!));
    const [, uuid] = Buffer.from(first.me.id, 'base64').toString().split(':');
    expect(await fresh.userFromAuthorization(`Bearer ${await idpToken({ sub: who.sub, email: `changed-${who.email}` })}`)).toBe(uuid);
  });

  it('resolves concurrent first requests of a new identity to one user', async () => {
    const who = identity();
    const token = await idpToken(who);
    const results = await Promise.all(Array.from({ length: 8 }, () => new Gql(app, token).request(ME)));
    for (const r of results) expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    expect(new Set(results.map((r) => r.data.me.id)).size).toBe(1);
    expect(await usersWithEmail(app.databaseUrl, who.email)).toHaveLength(1);
  });

  it('app.upsert_oidc_user: a second first-use waiting on an uncommitted one maps to the same user', async () => {
    const who = identity();
    const a = new pg.Client({ connectionString: app.databaseUrl });
    const b = new pg.Client({ connectionString: app.databaseUrl });
    await a.connect();
    await b.connect();
    try {
      const call = `select app.upsert_oidc_user($1, $2, $3, true, 'Kay') as id`;
      const args = [issuer, who.sub, who.email];
      await a.query('begin');
      const first = (await a.query(call, args)).rows[0].id;
      await b.query('begin');
      const pending = b.query(call, args);
      await new Promise((resolve) => setTimeout(resolve, 200)); // b is now blocked behind a's uncommitted rows
      await a.query('commit');
      const second = (await pending).rows[0].id;
      await b.query('commit');
      expect(second).toBe(first);
    } finally {
      await a.query('rollback').catch(() => undefined);
      await b.query('rollback').catch(() => undefined);
      await a.end();
      await b.end();
    }
  });

  it('lets an OIDC user create a tenant and see it', async () => {
    const who = identity();
    const gql = new Gql(app, await idpToken(who));
    const slug = `oidc-${process.pid}-${counter}`;
    const created = await gql.ok(`mutation($input: CreateTenantInput!) { createTenant(input: $input) { slug viewerRole } }`, {
      input: { name: 'OIDC org', slug },
    });
    expect(created.createTenant).toEqual({ slug, viewerRole: 'OWNER' });
    const listed = await gql.ok(`{ tenants { edges { node { slug } } } }`);
    expect(listed.tenants.edges.map((e: any) => e.node.slug)).toEqual([slug]);
  });

  it('refuses a token of that issuer signed by another key (same kid, and unknown kid)', async () => {
    const who = identity();
    const { privateKey } = await generateKeyPair('RS256');
    await expectRefused(await idpToken({ ...who, key: privateKey }));
    await expectRefused(await idpToken({ ...who, key: privateKey, kid: 'some-other-kid' }));
    expect(await usersWithEmail(app.databaseUrl, who.email)).toEqual([]);
  });

  it('refuses a wrong audience', async () => {
    const who = identity();
    await expectRefused(await idpToken({ ...who, aud: 'some-other-client' }));
    expect(await usersWithEmail(app.databaseUrl, who.email)).toEqual([]);
  });

  it('refuses an expired token', async () => {
    const who = identity();
    await expectRefused(await idpToken({ ...who, exp: Math.floor(Date.now() / 1000) - 120 }));
    expect(await usersWithEmail(app.databaseUrl, who.email)).toEqual([]);
  });

  it('refuses a token without an email', async () => {
    const who = identity();
    await expectRefused(await idpToken({ sub: who.sub }));
  });

  it('refuses an unsigned token claiming that issuer', async () => {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const who = identity();
    await expectRefused(`${b64({ alg: 'none' })}.${b64({ ...who, iss: issuer, aud: AUDIENCE, exp: now + 300, email_verified: true })}.`);
  });

  it('does not let a token signed with the IdP key pose as our own issuer', async () => {
    const who = identity();
    await expectRefused(await idpToken(who, app.services.config.auth.issuer));
  });

  it('links a verified email to an existing local account, and refuses an unverified one', async () => {
    const local = await signUp(app, 'local');
    const unverified = await new Gql(app, await idpToken({ sub: identity().sub, email: local.email, email_verified: false })).request(ME);
    expect(only(unverified).extensions?.code).toBe('CONFLICT');

    const linked = await new Gql(app, await idpToken({ sub: identity().sub, email: local.email, email_verified: true })).ok(ME);
    expect(linked.me.id).toBe(local.id);
  });

  it('keeps our own tokens working alongside OIDC; an OIDC-only user has no password', async () => {
    const local = await signUp(app, 'local2');
    expect((await local.gql.ok(ME)).me.id).toBe(local.id);

    const who = identity();
    await new Gql(app, await idpToken(who)).ok(ME);
    const r = await new Gql(app).request(`mutation($input: LogInInput!) { logIn(input: $input) { accessToken } }`, {
      input: { email: who.email, password: PASSWORD },
    });
    expect(only(r).extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('a new identity while the database is unreachable: SERVICE_UNAVAILABLE (retryable), not UNAUTHENTICATED', async () => {
    const down = new Database('postgres://nobody:x@127.0.0.1:1/none', { poolSize: 1, appRole: app.services.config.database.appRole });
    try {
      const fresh = new Authenticator(app.services.tokens, down, new OidcVerifier(app.services.config.auth.oidc!));
      await expect(fresh.userFromAuthorization(`Bearer ${await idpToken(identity())}`)).rejects.toMatchObject({
        message: 'the database is unreachable, try again',
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      });
    } finally {
      await down.close();
    }
  });
});

describe('OIDC discovery (no OIDC_JWKS_URI)', () => {
  let discoveryApp: TestApp;
  let discoveryIssuer: string;
  beforeAll(async () => {
    discoveryIssuer = `${base}/realms/discovery`;
    discoveryApp = await startTestApp({ OIDC_ISSUER: discoveryIssuer, OIDC_AUDIENCE: AUDIENCE });
  });
  afterAll(async () => {
    await discoveryApp?.stop();
  });

  it('finds the JWKS through /.well-known/openid-configuration', async () => {
    const who = identity();
    const data = await new Gql(discoveryApp, await idpToken(who, discoveryIssuer)).ok(ME);
    expect(data.me.email).toBe(who.email);
    expect(hits.get('/realms/discovery/.well-known/openid-configuration')).toBeGreaterThanOrEqual(1);
    expect(hits.get('/realms/discovery/protocol/openid-connect/certs')).toBeGreaterThanOrEqual(1);

    const { privateKey } = await generateKeyPair('RS256');
    const r = await new Gql(discoveryApp, await idpToken({ ...identity(), key: privateKey }, discoveryIssuer)).request(ME);
    expect(only(r).extensions?.code).toBe('UNAUTHENTICATED');
  });
});
