import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createClient, type Client } from 'graphql-ws';
import { SignJWT, importJWK, type CryptoKey, type JWK } from 'jose';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { getIntrospectionQuery } from 'graphql';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, PASSWORD, createTenant, signUp, type GqlResponse, type TestUser } from './support/client.ts';
import { sqlState } from '../src/graphql/errors.ts';

/**
 * Hardening (src/graphql/limits.ts, src/graphql/server.ts): abusive documents are refused before execution — no
 * resolver runs (the response has no `data` at all, and mutations in them leave nothing behind) and not one SQL
 * statement is sent (the request's transaction is opened only for an accepted operation).
 */
const ALLOWED_ORIGIN = 'https://app.example.test';
const BODY_LIMIT = 16 * 1024;

let app: TestApp;
let prod: TestApp;
let db: pg.Client;
let owner: TestUser;
let tenant: { id: string; slug: string };
let signingKey: { kid: string; privateKey: CryptoKey };
const clients: Client[] = [];
const sockets: WebSocket[] = [];

beforeAll(async () => {
  [app, prod] = await Promise.all([
    startTestApp({
      WS_CONNECTION_INIT_TIMEOUT_MS: '300',
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      ALLOWED_ORIGINS: `${ALLOWED_ORIGIN}, https://other.example.test/`,
      STATEMENT_TIMEOUT_MS: '1000',
    }),
    startTestApp({ NODE_ENV: 'production' }),
  ]);
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  owner = await signUp(app, 'hard-owner');
  tenant = await createTenant(owner, 'hard');
  const { rows } = await db.query(`select kid, private_jwk from app_private.signing_keys where retired_at is null order by created_at, kid limit 1`);
  signingKey = { kid: rows[0].kid, privateKey: (await importJWK(rows[0].private_jwk as JWK, 'EdDSA')) as CryptoKey };
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  for (const s of sockets) if (s.readyState === WebSocket.OPEN) s.terminate();
  await db?.end();
  await Promise.all([app?.stop(), prod?.stop()]);
});

const wsUrl = (a: TestApp) => a.url.replace(/^http/, 'ws');

/** Runs fn and returns how many SQL statements the app's request pool sent meanwhile. */
async function sqlDuring<T>(a: TestApp, fn: () => Promise<T>): Promise<{ result: T; statements: number }> {
  const before = a.services.db.statements;
  const result = await fn();
  return { result, statements: a.services.db.statements - before };
}

/** The request is refused with `code`, before execution (no `data` key at all) and without a single SQL statement. */
async function expectRefused(gql: Gql, query: string, variables: Record<string, unknown>, code: string, extra: { status?: number; operationName?: string } = {}) {
  const { result: r, statements } = await sqlDuring(app, () =>
    extra.operationName ? rawPost(app, { query, variables, operationName: extra.operationName }, gql.token) : gql.request(query, variables),
  );
  expect(r.errors, JSON.stringify(r)).toHaveLength(1);
  expect(r.errors![0]!.extensions?.code).toBe(code);
  expect('data' in r, 'execution must not have started').toBe(false);
  expect(r.status).toBe(extra.status ?? 400);
  expect(statements).toBe(0);
  return r.errors![0]!;
}

async function rawPost(a: TestApp, body: unknown, token?: string): Promise<GqlResponse> {
  const res = await fetch(a.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { ...((await res.json()) as object), status: res.status };
}

async function tenantExists(slug: string) {
  const { rows } = await db.query(`select count(*)::int as n from app_public.tenants where slug = $1`, [slug]);
  return rows[0].n > 0;
}

const freshSlug = (p: string) => `${p}-${crypto.randomBytes(4).toString('hex')}`;

/** `levels` times `members { edges { node { tenant { … } } } }` (4 levels of depth each). */
function nestedMembers(levels: number, leaf = 'id', first?: number | string): string {
  const page = first === undefined ? '' : `(first: ${first})`;
  let inner = leaf;
  for (let i = 0; i < levels; i++) inner = `members${page} { edges { node { tenant { ${inner} } } } }`;
  return inner;
}

describe('limits before execution (HTTP)', () => {
  it('control: an ordinary mutation and a full page (first: 100) within the limits run', async () => {
    const slug = freshSlug('ok');
    const data = await owner.gql.ok(`mutation($i: CreateTenantInput!) { createTenant(input: $i) { slug members(first: 100) { edges { node { role user { email } } } } } }`, {
      i: { name: 'Fine', slug },
    });
    expect(data.createTenant.members.edges).toEqual([{ node: { role: 'OWNER', user: { email: owner.email } } }]);
    expect(await tenantExists(slug)).toBe(true);
    // Depth 12 exactly is allowed: tenants(1) edges(2) node(3) + 2 × 4 levels + id(12); small pages keep it cheap.
    const deepest = await owner.gql.request(`{ tenants(first: 5) { edges { node { ${nestedMembers(2, 'id', 5)} } } } }`);
    expect(deepest.errors).toBeUndefined();
    expect(deepest.data.tenants.edges.length).toBeGreaterThan(0);
  });

  it('refuses a document nested deeper than 12 levels (GRAPHQL_VALIDATION_FAILED); its mutation never runs', async () => {
    const slug = freshSlug('deep');
    // createTenant(1) + 3 × 4 levels + id = 14.
    const e = await expectRefused(owner.gql, `mutation($i: CreateTenantInput!) { createTenant(input: $i) { ${nestedMembers(3)} } }`, { i: { name: 'Deep', slug } }, 'GRAPHQL_VALIDATION_FAILED');
    expect(e.message).toMatch(/depth limit of 12 exceeded/i);
    expect((e.extensions as Record<string, unknown>).limit).toBe('depth');
    expect(await tenantExists(slug)).toBe(false);
    // Fragments do not hide depth.
    await expectRefused(
      owner.gql,
      `query { tenants { edges { node { ...M } } } } fragment M on Tenant { members { edges { node { tenant { ...N } } } } } fragment N on Tenant { ${nestedMembers(2)} }`,
      {},
      'GRAPHQL_VALIDATION_FAILED',
    );
  });

  it('refuses a wide document whose cost (pages multiplied by first/last) is above 20,000', async () => {
    const slug = freshSlug('wide');
    // 100 × 100 × 100 memberships: within the depth limit, far beyond the cost.
    const e = await expectRefused(
      owner.gql,
      `mutation($i: CreateTenantInput!) { createTenant(input: $i) { ${nestedMembers(2, 'members(first: 100) { totalCount }', 100)} } }`,
      { i: { name: 'Wide', slug } },
      'GRAPHQL_VALIDATION_FAILED',
    );
    expect(e.message).toMatch(/more than the maximum of 20000/);
    expect((e.extensions as Record<string, unknown>).limit).toBe('cost');
    expect(await tenantExists(slug)).toBe(false);
    // The same page sizes through variables.
    const viaVariables = await expectRefused(owner.gql, `query($n: Int) { tenants(first: $n) { edges { node { ${nestedMembers(2, 'id', '$n')} } } } }`, { n: 100 }, 'GRAPHQL_VALIDATION_FAILED');
    expect((viaVariables.extensions as Record<string, unknown>).limit).toBe('cost');
    // Without first/last a page counts as 20: this shape (depth 12) costs 1 + 20 × (3 + 4·20 + 4·20²) = 33,661.
    const byDefault = await expectRefused(owner.gql, `{ tenants { edges { node { ${nestedMembers(2)} } } } }`, {}, 'GRAPHQL_VALIDATION_FAILED');
    expect(byDefault.extensions).toMatchObject({ limit: 'cost', cost: 33661 });
  });

  it('refuses more than 30 aliases; none of the 31 aliased mutations runs', async () => {
    const slugs = Array.from({ length: 31 }, (_, i) => freshSlug(`alias${i}`));
    const fields = slugs.map((s, i) => `a${i}: createTenant(input: { name: "Alias ${i}", slug: "${s}" }) { id }`).join('\n');
    const e = await expectRefused(owner.gql, `mutation { ${fields} }`, {}, 'GRAPHQL_VALIDATION_FAILED');
    expect(e.message).toMatch(/aliases limit of 30 exceeded, found 31/i);
    for (const s of slugs) expect(await tenantExists(s)).toBe(false);
    // 30 are fine.
    const thirty = Array.from({ length: 30 }, (_, i) => `a${i}: me { id }`).join(' ');
    const r = await owner.gql.request(`{ ${thirty} }`);
    expect(r.errors).toBeUndefined();
    expect(r.data.a29.id).toBe(owner.id);
  });

  it('refuses first/last above 100 (or negative) with BAD_USER_INPUT naming the argument, literal or variable', async () => {
    const slug = freshSlug('page');
    const e = await expectRefused(owner.gql, `mutation($i: CreateTenantInput!) { createTenant(input: $i) { members(first: 101) { totalCount } } }`, { i: { name: 'Page', slug } }, 'BAD_USER_INPUT');
    expect(e.extensions?.field).toBe('first');
    expect(e.message).toMatch(/between 0 and 100/);
    expect(await tenantExists(slug)).toBe(false);
    const v = await expectRefused(owner.gql, `query($n: Int) { tenants(first: $n) { edges { node { id } } } }`, { n: 1_000_000 }, 'BAD_USER_INPUT');
    expect(v.extensions?.field).toBe('first');
    const last = await expectRefused(owner.gql, `query($s: String!) { tenant(slug: $s) { members(last: 500) { totalCount } } }`, { s: tenant.slug }, 'BAD_USER_INPUT');
    expect(last.extensions?.field).toBe('last');
    const negative = await expectRefused(owner.gql, `{ tenants(first: -1) { edges { node { id } } } }`, {}, 'BAD_USER_INPUT');
    expect(negative.extensions?.field).toBe('first');
  });

  it('executes one operation per document: a document with several is refused, even naming the one to run', async () => {
    const slug = freshSlug('ops');
    const e = await expectRefused(
      owner.gql,
      `mutation A($i: CreateTenantInput!) { createTenant(input: $i) { id } } query B { me { id } }`,
      { i: { name: 'Ops', slug } },
      'GRAPHQL_VALIDATION_FAILED',
      { operationName: 'A' },
    );
    expect(e.message).toMatch(/only one operation/);
    expect(await tenantExists(slug)).toBe(false);
  });

  it('refuses a document of more than 5,000 tokens while parsing (GRAPHQL_PARSE_FAILED)', async () => {
    const e = await expectRefused(owner.gql, `{ ${'a '.repeat(5000)}}`, {}, 'GRAPHQL_PARSE_FAILED');
    expect(e.message).toMatch(/5000 tokens/);
  });

  it('HTTP batching (a JSON array of operations) is off', async () => {
    const { result, statements } = await sqlDuring(app, async () => {
      const res = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${owner.gql.token}` },
        body: JSON.stringify([{ query: '{ me { id } }' }, { query: '{ me { email } }' }]),
      });
      return { status: res.status, body: await res.text() };
    });
    expect(result.status).toBe(400);
    expect(result.body).toMatch(/batching/i);
    expect(statements).toBe(0);
  });

  it('refuses a subscription over HTTP (BAD_REQUEST: subscriptions are served over the WebSocket)', async () => {
    const e = await expectRefused(owner.gql, `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, { t: tenant.id }, 'BAD_REQUEST');
    expect(e.message).toMatch(/WebSocket/);
  });

  it('refused requests still carry a request id', async () => {
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ nope }' }) });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('CSRF prevention', () => {
  it('refuses a simple GET without a preflight-forcing header, serves it with one', async () => {
    const url = `${app.url}?query=${encodeURIComponent('{ __typename }')}`;
    const { result: simple, statements } = await sqlDuring(app, async () => {
      const res = await fetch(url);
      return { status: res.status, body: await res.text() };
    });
    expect(simple.status).toBe(400);
    expect(simple.body).toMatch(/Cross-Site Request Forgery/);
    expect(statements).toBe(0);
    const preflighted = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
    expect(preflighted.status).toBe(200);
    expect(await preflighted.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses POSTs a browser form could send (text/plain, urlencoded, multipart)', async () => {
    const body = JSON.stringify({ query: 'mutation { logOut(refreshToken: "x") }' });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const { result, statements } = await sqlDuring(app, async () => {
        const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': type }, body });
        return { status: res.status, body: await res.text() };
      });
      expect(result.status, type).toBe(400);
      expect(result.body, type).toMatch(/Cross-Site Request Forgery/);
      expect(statements, type).toBe(0);
    }
  });
});

describe('request size and time', () => {
  it('answers 413 (PAYLOAD_TOO_LARGE, as JSON) to a body over BODY_LIMIT_BYTES, without SQL', async () => {
    const { result, statements } = await sqlDuring(app, async () => {
      const res = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ me { id } }', variables: { pad: 'x'.repeat(BODY_LIMIT) } }),
      });
      return { status: res.status, body: (await res.json()) as GqlResponse, requestId: res.headers.get('x-request-id') };
    });
    expect(result.status).toBe(413);
    expect(result.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(result.requestId).toBeTruthy();
    expect(statements).toBe(0);
    // Just under the limit is served.
    const fits = await rawPost(app, { query: '{ me { id } }', variables: { pad: 'x'.repeat(BODY_LIMIT - 200) } }, owner.gql.token);
    expect(fits.status).toBe(200);
  });

  it('answers malformed JSON with 400 BAD_REQUEST as JSON', async () => {
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as GqlResponse).errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
  });

  it('cancels a statement running past STATEMENT_TIMEOUT_MS (57014)', async () => {
    const started = Date.now();
    const e = await app.services.db.withContext({}, (tx) => tx.$queryRaw`select pg_sleep(5)`).then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).not.toBeNull();
    expect(sqlState(e) ?? String(e)).toMatch(/57014|statement timeout/);
    expect(Date.now() - started).toBeLessThan(4000);
  });
});

describe('production mode', () => {
  let prodUser: TestUser;
  let prodTenant: { id: string; slug: string };
  beforeAll(async () => {
    prodUser = await signUp(prod, 'prod');
    prodTenant = await createTenant(prodUser, 'prod');
  });

  it('refuses introspection (__schema and __type) but keeps __typename; development allows it', async () => {
    for (const query of ['{ __schema { types { name } } }', '{ __type(name: "User") { fields { name } } }']) {
      const { result: r, statements } = await sqlDuring(prod, () => prodUser.gql.request(query));
      expect(r.errors?.[0]?.extensions?.code, query).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(r.errors?.[0]?.message).toMatch(/introspection/i);
      expect(statements).toBe(0);
    }
    expect((await prodUser.gql.request('{ __typename }')).data).toEqual({ __typename: 'Query' });
    const dev = await owner.gql.request('{ __schema { queryType { name } } }');
    expect(dev.data.__schema.queryType.name).toBe('Query');
    // The full query tools send (GraphiQL, codegen) fits the limits.
    const full = await owner.gql.request(getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true }));
    expect(full.errors).toBeUndefined();
    expect(full.data.__schema.types.length).toBeGreaterThan(20);
  });

  it('names nothing of the schema in errors: no "Did you mean" (fields, arguments, enum values)', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['{ mee { id } }', {}],
      ['{ tenants(frist: 1) { edges { node { id } } } }', {}],
      [`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, { i: { tenantId: 'x', userId: 'y', role: 'ADMN' } }],
    ];
    for (const [query, variables] of cases) {
      const devAnswer = await owner.gql.request(query, variables);
      expect(devAnswer.errors?.[0]?.message, `control: ${query}`).toMatch(/Did you mean/);
      const r = await prodUser.gql.request(query, variables);
      expect(r.errors?.length, query).toBeGreaterThan(0);
      for (const e of r.errors!) expect(e.message, query).not.toMatch(/Did you mean/i);
      expect(JSON.stringify(r)).not.toMatch(/"me"|"first"|"ADMIN"/);
    }
    // The offending input is still named.
    const enumError = await prodUser.gql.request(cases[2]![0], cases[2]![1]);
    expect(enumError.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'i.role' });
  });

  it('masks unexpected errors: "internal error" with the request id, nothing of the cause', async () => {
    // A NUL byte reaches PostgreSQL, which refuses it (22021): an unexpected error.
    const res = await fetch(prod.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${prodUser.gql.token}` },
      body: JSON.stringify({ query: 'query($s: String!) { tenant(slug: $s) { id } }', variables: { s: 'a\u0000b' } }),
    });
    const body = (await res.json()) as GqlResponse;
    const e = body.errors![0]!;
    expect(e.message).toBe('internal error');
    expect(e.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(e.extensions?.requestId).toBe(res.headers.get('x-request-id'));
    expect(Object.keys(e.extensions!).sort()).toEqual(['code', 'requestId']);
    expect(JSON.stringify(body)).not.toMatch(/0x00|byte sequence|prisma|postgres|stack/i);
    expect(prodTenant.slug).toBeTruthy();
  });

  it('refuses introspection over WebSocket too', async () => {
    const client = wsClient(prod, prodUser.gql.token);
    const errors = await firstErrors(client, { query: '{ __schema { types { name } } }' });
    expect(errors[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// WebSocket

function wsClient(a: TestApp, token?: string, extra: Record<string, unknown> = {}) {
  const client = createClient({
    url: wsUrl(a),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}`, ...extra } : extra,
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(client);
  return client;
}

/** Subscribes and resolves with the errors of the first refusal (error message or errors in a result). */
function firstErrors(client: Client, payload: { query: string; variables?: Record<string, unknown> }) {
  return new Promise<any[]>((resolve, reject) => {
    client.subscribe(payload, {
      next: (v) => (v.errors ? resolve([...v.errors]) : reject(new Error(`unexpected data ${JSON.stringify(v)}`))),
      error: (e) => resolve(Array.isArray(e) ? e : [e]),
      complete: () => resolve([]),
    });
  });
}

function rawSocket(a: TestApp, opts: WebSocket.ClientOptions = {}) {
  const s = new WebSocket(wsUrl(a), 'graphql-transport-ws', opts);
  s.on('error', () => undefined); // a refused handshake also emits an error: the tests read the status instead
  sockets.push(s);
  return s;
}

/** Resolves 'open' or the HTTP status of a refused handshake. */
function handshake(s: WebSocket) {
  return new Promise<'open' | number>((resolve) => {
    s.once('open', () => resolve('open'));
    s.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
  });
}

const closed = (s: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => s.once('close', (code, reason) => resolve({ code, reason: String(reason) })));

async function until(predicate: () => boolean, ms = 5000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rename = (u: TestUser, t: { id: string }, name: string) => u.gql.ok(`mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`, { i: { tenantId: t.id, name } });
const AUDIT = `subscription($t: ID!) { auditEvents(tenantId: $t) { action targetId } }`;

describe('graphql-ws', () => {
  it('closes a connection that sends no connection_init within WS_CONNECTION_INIT_TIMEOUT_MS (4408)', async () => {
    const s = rawSocket(app);
    expect(await handshake(s)).toBe('open');
    const started = Date.now();
    const { code } = await closed(s);
    expect(code).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('closes with 4403 on a bad token', async () => {
    const s = rawSocket(app);
    expect(await handshake(s)).toBe('open');
    s.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer not-a-token' } }));
    expect((await closed(s)).code).toBe(4403);
  });

  it('refuses a disallowed Origin at the handshake (403); allows listed, same-host and Origin-less clients', async () => {
    const { result: status, statements } = await sqlDuring(app, () => handshake(rawSocket(app, { origin: 'https://evil.example' })));
    expect(status).toBe(403);
    expect(statements).toBe(0);
    expect(await handshake(rawSocket(app, { origin: 'http://evil.example:4000' }))).toBe(403);
    expect(await handshake(rawSocket(app, { origin: ALLOWED_ORIGIN }))).toBe('open');
    expect(await handshake(rawSocket(app, { origin: 'https://other.example.test' }))).toBe('open');
    expect(await handshake(rawSocket(app, { origin: `http://127.0.0.1:${app.port}` }))).toBe('open');
    expect(await handshake(rawSocket(app))).toBe('open');
    // Unset ALLOWED_ORIGINS (the production app here): foreign origins refused, same host allowed.
    expect(await handshake(rawSocket(prod, { origin: ALLOWED_ORIGIN }))).toBe(403);
    expect(await handshake(rawSocket(prod, { origin: `http://127.0.0.1:${prod.port}` }))).toBe('open');
  });

  it('closes the socket when its token expires (4401), not before', async () => {
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA', kid: signingKey.kid, typ: 'at+jwt' })
      .setSubject(decodeGlobalID(owner.id).id)
      .setIssuer(app.services.config.auth.issuer)
      .setAudience(app.services.config.auth.audience)
      .setIssuedAt()
      .setJti(crypto.randomUUID())
      .setExpirationTime(exp)
      .sign(signingKey.privateKey);
    const client = wsClient(app, token);
    const events: any[] = [];
    const closedWith = new Promise<{ code: number; at: number }>((resolve) => client.on('closed', (e: any) => resolve({ code: e.code, at: Date.now() })));
    client.subscribe({ query: AUDIT, variables: { t: tenant.id } }, { next: (v) => events.push(v), error: () => undefined, complete: () => undefined });
    // The subscription works while the token is valid.
    for (let i = 0; i < 30 && events.length === 0 && Date.now() < exp * 1000 - 300; i++) {
      await rename(owner, tenant, `Before expiry ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(events.length).toBeGreaterThan(0);
    const { code, at } = await closedWith;
    expect(code).toBe(4401);
    expect(at).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(at).toBeLessThan(exp * 1000 + 2000);
  });

  it('closes the socket when its session is revoked (logOut: 4401, at once); a socket of another session stays open', async () => {
    const user = await signUp(app, 'session');
    const own = await createTenant(user, 'session');
    // A second login of the same user: another session, whose socket must survive the first one's logOut.
    const login = await new Gql(app).ok(`mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }`, { i: { email: user.email, password: PASSWORD } });
    const watch = (token: string) => {
      const client = wsClient(app, token);
      const events: any[] = [];
      const closedWith = new Promise<{ code: number; reason: string }>((resolve) => client.on('closed', (e: any) => resolve({ code: e.code, reason: e.reason })));
      client.subscribe({ query: AUDIT, variables: { t: own.id } }, { next: (v) => events.push(v), error: () => undefined, complete: () => undefined });
      return { events, closedWith };
    };
    const first = watch(user.gql.token!);
    const second = watch(login.logIn.accessToken);
    for (let i = 0; i < 40 && (first.events.length === 0 || second.events.length === 0); i++) {
      await rename(user, own, `Before logOut ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(first.events.length).toBeGreaterThan(0);
    expect(second.events.length).toBeGreaterThan(0);
    const loggedOutAt = Date.now();
    expect(await user.gql.ok(`mutation($r: String!) { logOut(refreshToken: $r) }`, { r: user.refreshToken })).toEqual({ logOut: true });
    const { code, reason } = await first.closedWith;
    expect(code).toBe(4401);
    expect(reason).toBe('Session revoked');
    expect(Date.now() - loggedOutAt).toBeLessThan(2000);
    // The other session goes on receiving.
    const before = second.events.length;
    await rename(user, own, 'After logOut');
    await expect.poll(() => second.events.length, { timeout: 3000 }).toBeGreaterThan(before);
  });

  it('a refreshed token carries the same session: reusing a spent refresh token revokes it and closes the socket', async () => {
    const user = await signUp(app, 'reuse');
    const own = await createTenant(user, 'reuse');
    const refreshed = await new Gql(app).ok(`mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }`, { r: user.refreshToken });
    const client = wsClient(app, refreshed.refreshSession.accessToken);
    const events: any[] = [];
    const closedWith = new Promise<number>((resolve) => client.on('closed', (e: any) => resolve(e.code)));
    client.subscribe({ query: AUDIT, variables: { t: own.id } }, { next: (v) => events.push(v), error: () => undefined, complete: () => undefined });
    for (let i = 0; i < 40 && events.length === 0; i++) {
      await rename(user, own, `Before reuse ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(events.length).toBeGreaterThan(0);
    // The spent token again: theft detected, the whole family revoked.
    const reuse = await new Gql(app).request(`mutation($r: String!) { refreshSession(refreshToken: $r) { accessToken } }`, { r: user.refreshToken });
    expect(reuse.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await closedWith).toBe(4401);
  });

  it("delivers nothing of another tenant's audit events", async () => {
    const outsider = await signUp(app, 'outsider');
    const own = await createTenant(outsider, 'outsider');
    const foreign: any[] = [];
    const foreignErrors: any[] = [];
    const mine: any[] = [];
    const client = wsClient(app, outsider.gql.token);
    client.subscribe({ query: AUDIT, variables: { t: tenant.id } }, {
      next: (v) => (v.errors ? foreignErrors.push(...v.errors) : foreign.push(v.data)),
      error: (e) => foreignErrors.push(e),
      complete: () => undefined,
    });
    client.subscribe({ query: AUDIT, variables: { t: own.id } }, { next: (v) => mine.push(v.data), error: () => undefined, complete: () => undefined });
    // Narrowed to the victim tenant with X-Tenant: still nothing.
    const narrowed = wsClient(app, outsider.gql.token, { 'x-tenant': tenant.slug });
    const narrowedEvents: any[] = [];
    narrowed.subscribe({ query: AUDIT, variables: { t: tenant.id } }, { next: (v) => narrowedEvents.push(v), error: () => undefined, complete: () => undefined });
    await until(() => foreignErrors.length > 0);
    expect(['NOT_FOUND', 'FORBIDDEN']).toContain(foreignErrors[0]?.extensions?.code);
    // The victim's tenant changes many times; the outsider's own tenant once, at the end (the control).
    for (let i = 0; i < 5; i++) await rename(owner, tenant, `Victim ${i}`);
    for (let i = 0; i < 50 && mine.length === 0; i++) {
      await rename(outsider, own, `Own ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(mine.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(foreign).toEqual([]);
    expect(narrowedEvents.filter((v) => v.data)).toEqual([]);
    const victimId = decodeGlobalID(tenant.id).id;
    expect(mine.every((d) => d.auditEvents.targetId !== victimId)).toBe(true);
  });

  it('applies the same limits to operations over the socket, with no SQL, and keeps the socket usable', async () => {
    const client = wsClient(app, owner.gql.token);
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: action`).join(' ');
    const { result: tooMany, statements } = await sqlDuring(app, () => firstErrors(client, { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { ${aliases} } }`, variables: { t: tenant.id } }));
    expect(tooMany[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(tooMany[0]?.message).toMatch(/aliases limit/i);
    expect(statements).toBe(0);
    const tokens = await firstErrors(client, { query: `subscription { ${'a '.repeat(5000)}}` });
    expect(tokens[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    const two = await firstErrors(client, { query: `subscription A($t: ID!) { auditEvents(tenantId: $t) { action } } subscription B($t: ID!) { auditEvents(tenantId: $t) { id } }`, variables: { t: tenant.id } });
    expect(two[0]?.message).toMatch(/only one operation/);
    const page = await firstErrors(client, { query: `query($s: String!) { tenant(slug: $s) { members(first: 1000) { totalCount } } }`, variables: { s: tenant.slug } });
    expect(page[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it('closes a socket that sends a message larger than BODY_LIMIT_BYTES (1009)', async () => {
    const s = rawSocket(app);
    expect(await handshake(s)).toBe('open');
    s.send(JSON.stringify({ type: 'connection_init', payload: { pad: 'x'.repeat(BODY_LIMIT + 1) } }));
    expect((await closed(s)).code).toBe(1009);
  });
});
