import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, signUp, type GqlResponse, type TestUser } from './support/client.ts';

let app: TestApp;
let user: TestUser;
/** The user's uuid (the `sub` of its tokens); user.id is the relay global id. */
let userUuid: string;
/** The deployment's real signing key, read through the privileged connection. */
let signingKey: { kid: string; privateKey: CryptoKey };

beforeAll(async () => {
  app = await startTestApp();
  user = await signUp(app, 'auth');
  userUuid = uuidOf(user.id);
  const owner = new pg.Client({ connectionString: app.databaseUrl });
  await owner.connect();
  try {
    const { rows } = await owner.query(`select kid, private_jwk from app_private.signing_keys where retired_at is null order by created_at, kid limit 1`);
    signingKey = { kid: rows[0].kid, privateKey: (await importJWK(rows[0].private_jwk as JWK, 'EdDSA')) as CryptoKey };
  } finally {
    await owner.end();
  }
});
afterAll(async () => {
  await app?.stop();
});

const LOG_IN = `mutation($input: LogInInput!) { logIn(input: $input) { accessToken refreshToken expiresAt user { id email } } }`;
const REFRESH = `mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken user { id } } }`;
const LOG_OUT = `mutation($t: String!) { logOut(refreshToken: $t) }`;
const ME = `{ me { id email } }`;

async function logIn(email: string, password = PASSWORD) {
  const data = await new Gql(app).ok(LOG_IN, { input: { email, password } });
  return data.logIn as { accessToken: string; refreshToken: string; expiresAt: string; user: { id: string; email: string } };
}

function meWith(token: string) {
  return new Gql(app, token).request(ME);
}

function only(r: GqlResponse) {
  expect(r.errors, JSON.stringify(r)).toHaveLength(1);
  return r.errors![0]!;
}

/** A token signed with `key`, with our real issuer/audience/sub unless overridden. */
function forge(opts: { key?: CryptoKey; kid?: string; sub?: string; iss?: string; aud?: string; exp?: number } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', kid: opts.kid ?? signingKey.kid, typ: 'at+jwt' })
    .setSubject(opts.sub ?? userUuid)
    .setIssuer(opts.iss ?? app.services.config.auth.issuer)
    .setAudience(opts.aud ?? app.services.config.auth.audience)
    .setIssuedAt(now - 60)
    .setJti(crypto.randomUUID())
    .setExpirationTime(opts.exp ?? now + 300)
    .sign(opts.key ?? signingKey.privateKey);
}

function uuidOf(globalId: string) {
  const [type, uuid] = Buffer.from(globalId, 'base64').toString().split(':');
  expect(type).toBe('User');
  return uuid!;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('logIn', () => {
  it('works with the right password and the access token authenticates `me`', async () => {
    const session = await logIn(user.email);
    expect(session.accessToken.split('.')).toHaveLength(3);
    expect(session.refreshToken.length).toBeGreaterThanOrEqual(40);
    expect(new Date(session.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(session.user.email).toBe(user.email);
    const r = await meWith(session.accessToken);
    expect(r.errors).toBeUndefined();
    expect(r.data.me).toEqual({ id: user.id, email: user.email });
  });

  it('is case-insensitive on the email', async () => {
    const session = await logIn(user.email.toUpperCase());
    expect(session.user.id).toBe(user.id);
  });

  it('answers a wrong password and an unknown email the same way', async () => {
    const anon = new Gql(app);
    const wrongPassword = await anon.request(LOG_IN, { input: { email: user.email, password: 'not the right password at all' } });
    const unknownEmail = await anon.request(LOG_IN, { input: { email: `nobody-${Date.now()}@example.test`, password: PASSWORD } });
    const malformedEmail = await anon.request(LOG_IN, { input: { email: 'not an email', password: PASSWORD } });
    const a = only(wrongPassword);
    const b = only(unknownEmail);
    const c = only(malformedEmail);
    expect(a.extensions?.code).toBe('UNAUTHENTICATED');
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(unknownEmail.status).toBe(wrongPassword.status);
    expect(malformedEmail.status).toBe(wrongPassword.status);
    expect(wrongPassword.data?.logIn ?? null).toBeNull();
    expect(a.message).not.toMatch(/password is wrong|no such|unknown|not found/i);
  });
});

describe('access token verification', () => {
  let reference: { status: number; message: string };

  beforeAll(async () => {
    // A garbage token sets the reference answer every forged token must match exactly.
    const r = await meWith('garbage');
    const e = only(r);
    expect(e.extensions?.code).toBe('UNAUTHENTICATED');
    reference = { status: r.status, message: e.message };
  });

  async function expectRefused(token: string) {
    const r = await meWith(token);
    const e = only(r);
    expect(e.extensions?.code).toBe('UNAUTHENTICATED');
    expect(e.message).toBe(reference.message);
    expect(r.status).toBe(reference.status);
    expect(r.data ?? null).toBeNull();
  }

  it('answers 401 for an invalid token', () => {
    expect(reference.status).toBe(401);
  });

  it('accepts a token forged with the real key and the right claims (control)', async () => {
    const r = await meWith(await forge());
    expect(r.errors).toBeUndefined();
    expect(r.data.me.id).toBe(user.id);
  });

  it('refuses an expired token', async () => {
    await expectRefused(await forge({ exp: Math.floor(Date.now() / 1000) - 120 }));
  });

  it('a token accepted once (and cached as verified) is refused once it expires', async () => {
    const token = await forge({ exp: Math.floor(Date.now() / 1000) + 2 });
    expect((await meWith(token)).errors).toBeUndefined();
    expect((await meWith(token)).errors).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2100));
    await expectRefused(token);
  });

  it('refuses a tampered signature', async () => {
    const token = await forge();
    const [h, p, s] = token.split('.') as [string, string, string];
    // Flip a character in the middle (the last one carries padding bits that may not count).
    const i = Math.floor(s.length / 2);
    const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    await expectRefused(`${h}.${p}.${flipped}`);
  });

  it('refuses a tampered payload (another sub under the original signature)', async () => {
    const other = await signUp(app, 'other');
    const token = await forge();
    const [h, , s] = token.split('.') as [string, string, string];
    const now = Math.floor(Date.now() / 1000);
    const payload = b64url({ sub: uuidOf(other.id), iss: app.services.config.auth.issuer, aud: app.services.config.auth.audience, iat: now, exp: now + 300 });
    await expectRefused(`${h}.${payload}.${s}`);
  });

  it('refuses an unsigned `alg: none` token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { sub: userUuid, iss: app.services.config.auth.issuer, aud: app.services.config.auth.audience, iat: now, exp: now + 300 };
    await expectRefused(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`);
    await expectRefused(`${b64url({ alg: 'none', kid: signingKey.kid })}.${b64url(payload)}.`);
  });

  it('refuses an HS256 token keyed with the public key (algorithm confusion)', async () => {
    const res = await fetch(new URL('/.well-known/jwks.json', app.url));
    const jwks = (await res.json()) as { keys: JWK[] };
    const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: signingKey.kid })
      .setSubject(userUuid)
      .setIssuer(app.services.config.auth.issuer)
      .setAudience(app.services.config.auth.audience)
      .setExpirationTime(now + 300)
      .sign(secret);
    await expectRefused(token);
  });

  it('refuses a wrong issuer', async () => {
    await expectRefused(await forge({ iss: 'someone-else' }));
  });

  it('refuses a wrong audience', async () => {
    await expectRefused(await forge({ aud: 'another-api' }));
  });

  it('refuses a token signed by another Ed25519 key under our kid', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    await expectRefused(await forge({ key: privateKey }));
  });

  it('refuses an Authorization header that is not a bearer token', async () => {
    const r = await new Gql(app).request(ME, {}, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    const e = only(r);
    expect(e.extensions?.code).toBe('UNAUTHENTICATED');
    expect(e.message).toBe(reference.message);
    expect(r.status).toBe(reference.status);
  });
});

describe('refresh tokens', () => {
  it('rotate: a new pair, and the spent token no longer works', async () => {
    const first = await logIn(user.email);
    const anon = new Gql(app);
    const rotated = (await anon.ok(REFRESH, { t: first.refreshToken })).refreshSession;
    expect(rotated.refreshToken).not.toBe(first.refreshToken);
    expect(rotated.accessToken).not.toBe(first.accessToken);
    expect(rotated.user.id).toBe(user.id);
    const me = await meWith(rotated.accessToken);
    expect(me.data.me.id).toBe(user.id);

    const again = await anon.request(REFRESH, { t: first.refreshToken });
    expect(only(again).extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('reuse of a spent token revokes the whole family, not other logins', async () => {
    const anon = new Gql(app);
    const family = await logIn(user.email);
    const otherLogin = await logIn(user.email);

    const second = (await anon.ok(REFRESH, { t: family.refreshToken })).refreshSession;
    const third = (await anon.ok(REFRESH, { t: second.refreshToken })).refreshSession;

    // Replaying the first (spent) token: refused, and it burns the family.
    const replay = await anon.request(REFRESH, { t: family.refreshToken });
    expect(only(replay).extensions?.code).toBe('UNAUTHENTICATED');
    expect(replay.data?.refreshSession ?? null).toBeNull();

    // The newest token of the family, never used, now fails too.
    const newest = await anon.request(REFRESH, { t: third.refreshToken });
    expect(only(newest).extensions?.code).toBe('UNAUTHENTICATED');
    expect(only(newest).message).toBe(only(replay).message);

    // Another login is another family: unaffected.
    const other = (await anon.ok(REFRESH, { t: otherLogin.refreshToken })).refreshSession;
    expect(other.user.id).toBe(user.id);
    expect((await anon.ok(REFRESH, { t: other.refreshToken })).refreshSession.user.id).toBe(user.id);
  });

  it('refuses an unknown refresh token with the same answer as a token failure', async () => {
    const r = await new Gql(app).request(REFRESH, { t: 'not-a-token' });
    const e = only(r);
    expect(e.extensions?.code).toBe('UNAUTHENTICATED');
    const tokenFailure = only(await meWith('garbage'));
    expect(e.message).toBe(tokenFailure.message);
  });

  it('logOut revokes the family; the token then fails; logOut is idempotent', async () => {
    const anon = new Gql(app);
    const session = await logIn(user.email);
    const rotated = (await anon.ok(REFRESH, { t: session.refreshToken })).refreshSession;
    const other = await logIn(user.email);

    expect((await anon.ok(LOG_OUT, { t: rotated.refreshToken })).logOut).toBe(true);
    const after = await anon.request(REFRESH, { t: rotated.refreshToken });
    expect(only(after).extensions?.code).toBe('UNAUTHENTICATED');

    expect((await anon.ok(LOG_OUT, { t: rotated.refreshToken })).logOut).toBe(true);
    expect((await anon.ok(LOG_OUT, { t: 'never-issued' })).logOut).toBe(true);

    expect((await anon.ok(REFRESH, { t: other.refreshToken })).refreshSession.user.id).toBe(user.id);
  });
});

describe('JWKS', () => {
  it('publishes the public key only, and access tokens verify against it', async () => {
    const res = await fetch(new URL('/.well-known/jwks.json', app.url));
    expect(res.status).toBe(200);
    const jwks = (await res.json()) as { keys: JWK[] };
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of jwks.keys) {
      expect(key.kty).toBe('OKP');
      expect(key.crv).toBe('Ed25519');
      expect(key.x).toBeTruthy();
      expect(key).not.toHaveProperty('d');
      expect(key.kid).toBeTruthy();
    }
    expect(jwks.keys.map((k) => k.kid)).toContain(signingKey.kid);

    const session = await logIn(user.email);
    expect(decodeProtectedHeader(session.accessToken)).toMatchObject({ alg: 'EdDSA', kid: signingKey.kid });
    const { payload } = await jwtVerify(session.accessToken, createLocalJWKSet(jwks), {
      issuer: app.services.config.auth.issuer,
      audience: app.services.config.auth.audience,
      algorithms: ['EdDSA'],
    });
    expect(payload.sub).toBe(userUuid);
    expect(payload.exp! * 1000).toBeGreaterThan(Date.now());

    // A token signed by another key does not verify against the published set.
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    await expect(jwtVerify(await forge({ key: privateKey }), createLocalJWKSet(jwks))).rejects.toThrow();
  });
});
