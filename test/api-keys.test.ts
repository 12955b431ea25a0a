import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from './support/app.ts';
import { startApiProcess, type ApiProcess } from './support/api-process.ts';
import { Gql, signUp, createTenant, addMember, rowUuid, type TestUser } from './support/client.ts';
import { poll } from './support/workers.ts';
import { CREATE_UPLOAD, sha256hex, uploadDocument } from './support/uploads.ts';
import { uuidFromGlobalId } from '../src/graphql/ids.ts';
import { createTenantplaneClient, TenantApiKeysDocument, MeDocument, AuditEventsDocument } from '../src/sdk/index.ts';

/** API keys (issue 9 §3): created through GraphQL, used over HTTP, WebSocket and the SDK, revoked, expired, tampered. */
let app: TestApp;
let sql: pg.Client;
let owner: TestUser;
let admin: TestUser;
let outsider: TestUser;
let tenantA: { id: string; slug: string };
let tenantB: { id: string; slug: string };
let tenantC: { id: string; slug: string };
const sockets: Client[] = [];

const CREATE = `mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name prefix permissions createdAt expiresAt revokedAt lastUsedAt active createdBy { id } } }
}`;
const REVOKE = `mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt active revokedBy { id } } }`;
const LIST = `query($slug: String!) { tenant(slug: $slug) { apiKeys(first: 50) { totalCount edges { node { id name prefix permissions lastUsedAt lastUsedIp active } } } } }`;
const WHO = `query { me { id } tenants(first: 10) { edges { node { slug } } } }`;
const AUDIT = `query($slug: String!) { tenant(slug: $slug) { auditLog(first: 50) { edges { node { action targetId outcome details ip actor { id } } } } } }`;
const RENAME = `mutation($i: UpdateTenantInput!) { updateTenant(input: $i) { name } }`;

async function createKey(user: TestUser, tenantId: string, permissions: string[], extra: Record<string, unknown> = {}) {
  const data = await user.gql.ok(CREATE, { input: { tenantId, name: 'integration', permissions, ...extra } });
  return data.createApiKey as { secret: string; apiKey: { id: string; prefix: string; permissions: string[]; active: boolean } };
}

const withKey = (key: string, target: TestApp | { url: string } = app) => new Gql(target as TestApp, key);

function connect(token: string, target: { url: string } = app) {
  let closed: { code: number; reason: string } | undefined;
  const client = createClient({
    url: target.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: (e) => (closed = e as { code: number; reason: string }) },
  });
  sockets.push(client);
  return { client, closed: () => closed };
}

beforeAll(async () => {
  app = await startTestApp({ WORKERS: 'false' });
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  owner = await signUp(app, 'keyowner');
  admin = await signUp(app, 'keyadmin');
  outsider = await signUp(app, 'keyoutsider');
  tenantA = await createTenant(owner, 'keys-a');
  tenantB = await createTenant(owner, 'keys-b');
  tenantC = await createTenant(outsider, 'keys-c');
  await addMember(owner, tenantA.id, admin, 'ADMIN');
}, 60_000);

afterAll(async () => {
  for (const s of sockets) await Promise.resolve(s.dispose()).catch(() => undefined);
  await sql?.end();
  await app?.stop();
});

describe('creating a key', () => {
  it('answers the secret once, in the documented format; lists never show it, nor does SQL as the request role', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['documents:read', 'sites:read']);
    expect(secret).toMatch(/^tpk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(secret.startsWith(`${apiKey.prefix}_`)).toBe(true);
    expect(apiKey.permissions).toEqual(['documents:read', 'sites:read']);
    expect(apiKey.active).toBe(true);

    const list = await owner.gql.request(LIST, { slug: tenantA.slug });
    expect(list.errors).toBeUndefined();
    expect(list.data.tenant.apiKeys.edges.map((e: any) => e.node.id)).toContain(apiKey.id);
    const secretPart = secret.slice(apiKey.prefix.length + 1);
    expect(JSON.stringify(list)).not.toContain(secretPart);
    // The type has no field that could carry it.
    const introspection = await owner.gql.ok(`{ __type(name: "ApiKey") { fields { name } } }`);
    expect(introspection.__type.fields.map((f: any) => f.name)).not.toContain('secret');

    // As tenantplane_app with the owner's own context: every column of the row, and not a trace of the secret.
    await sql.query('begin');
    try {
      await sql.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true)`, [uuidFromGlobalId('User', owner.id, 'u')]);
      const { rows } = await sql.query(`select row_to_json(k)::text as row from app_public.api_keys k where id = $1`, [rowUuid(apiKey.id)]);
      expect(rows).toHaveLength(1);
      expect(rows[0].row).not.toContain(secretPart);
      await expect(sql.query(`select * from app_private.api_key_secrets`)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await sql.query('rollback');
    }
    // Privileged: only a 32-byte keyed hash is stored, not the secret nor its plain sha256.
    const { rows } = await sql.query(
      `select s.secret_hash = sha256(convert_to($2, 'utf8')) as plain, length(s.secret_hash) as len
         from app_private.api_key_secrets s where s.key_id = $1`,
      [rowUuid(apiKey.id), secret],
    );
    expect(rows).toEqual([{ plain: false, len: 32 }]);
  });

  it('refuses permissions that are unknown or malformed, naming them (BAD_USER_INPUT, field permissions)', async () => {
    const unknown = await owner.gql.request(CREATE, { input: { tenantId: tenantA.id, name: 'x', permissions: ['documents:read', 'nope:read'] } });
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'permissions' });
    expect(unknown.errors?.[0]?.message).toContain('nope:read');
    const malformed = await owner.gql.request(CREATE, { input: { tenantId: tenantA.id, name: 'x', permissions: ['Documents'] } });
    expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'permissions' });
    expect(malformed.errors?.[0]?.message).toContain('Documents');
    const none = await owner.gql.request(CREATE, { input: { tenantId: tenantA.id, name: 'x', permissions: [] } });
    expect(none.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'permissions' });
  });

  it('refuses permissions the creator does not hold, naming them (FORBIDDEN, field permissions), wildcards included', async () => {
    // An ADMIN does not hold tenants:delete (owners only), so neither it nor a wildcard covering it.
    for (const [asked, offending] of [
      [['documents:read', 'tenants:delete'], 'tenants:delete'],
      [['*:*'], '*:*'],
      [['tenants:*'], 'tenants:*'],
    ] as const) {
      const r = await admin.gql.request(CREATE, { input: { tenantId: tenantA.id, name: 'x', permissions: asked } });
      expect(r.errors?.[0]?.extensions, String(asked)).toMatchObject({ code: 'FORBIDDEN', field: 'permissions' });
      expect(r.errors?.[0]?.message).toContain(offending);
      expect(r.errors?.[0]?.message).not.toContain('documents:read');
    }
    // The owner holds them all.
    const ok = await createKey(owner, tenantA.id, ['*:*']);
    expect(ok.apiKey.permissions).toEqual(['*:*']);
    // Nothing half-written by the refusals: only the keys created on purpose exist.
    const { rows } = await sql.query(`select count(*)::int as n from app_public.api_keys where tenant_id = $1 and created_by = $2`, [
      uuidFromGlobalId('Tenant', tenantA.id, 't'),
      uuidFromGlobalId('User', admin.id, 'u'),
    ]);
    expect(rows[0].n).toBe(0);
  });

  it('refuses an expiry in the past, and creation by a member without api_keys:write', async () => {
    const past = await owner.gql.request(CREATE, {
      input: { tenantId: tenantA.id, name: 'x', permissions: ['documents:read'], expiresAt: new Date(Date.now() - 1000).toISOString() },
    });
    expect(past.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'expiresAt' });
    const viewer = await signUp(app, 'keyviewer');
    await addMember(owner, tenantA.id, viewer, 'VIEWER');
    expect(await viewer.gql.code(CREATE, { input: { tenantId: tenantA.id, name: 'x', permissions: ['documents:read'] } })).toBe('FORBIDDEN');
    expect(await viewer.gql.code(REVOKE, { id: (await createKey(owner, tenantA.id, ['documents:read'])).apiKey.id })).toBe('FORBIDDEN');
    // Another tenant's id: answered like a missing tenant.
    expect(await owner.gql.code(CREATE, { input: { tenantId: tenantC.id, name: 'x', permissions: ['documents:read'] } })).toBe('NOT_FOUND');
  });
});

describe('using a key', () => {
  it('authenticates over HTTP as its creator, bound to its tenant whatever X-Tenant says', async () => {
    const { secret } = await createKey(owner, tenantA.id, ['*:read']);
    const key = withKey(secret);
    const who = await key.ok(WHO);
    expect(who.me.id).toBe(owner.id);
    // The owner belongs to A and B; the key sees A only.
    expect(who.tenants.edges.map((e: any) => e.node.slug)).toEqual([tenantA.slug]);
    expect((await key.ok(`query($s: String!) { tenant(slug: $s) { id } }`, { s: tenantB.slug })).tenant).toBeNull();
    // X-Tenant naming another tenant of the creator: that tenant is simply not visible.
    const narrowed = await key.request(`query($s: String!) { tenant(slug: $s) { id } tenants(first: 10) { edges { node { slug } } } }`, { s: tenantB.slug }, { 'x-tenant': tenantB.slug });
    expect(narrowed.errors).toBeUndefined();
    expect(narrowed.data.tenant).toBeNull();
    expect(narrowed.data.tenants.edges.map((e: any) => e.node.slug)).toEqual([tenantA.slug]);
    // Mutations in another tenant of the creator: not found.
    expect(await key.code(RENAME, { i: { tenantId: tenantB.id, name: 'renamed by key' } })).toBe('NOT_FOUND');
  });

  it('acts for its tenant, never for its creator’s account (self mutations are FORBIDDEN), and holds no platform permission', async () => {
    const { secret } = await createKey(owner, tenantA.id, ['*:*']);
    const key = withKey(secret);
    expect(await key.code(`mutation($t: ID!) { leaveTenant(tenantId: $t) }`, { t: tenantA.id })).toBe('FORBIDDEN');
    expect(await key.code(`mutation($i: CreateTenantInput!) { createTenant(input: $i) { id } }`, { i: { name: 'by key', slug: `by-key-${Date.now()}` } })).toBe('FORBIDDEN');
    const a = uuidFromGlobalId('Tenant', tenantA.id, 't');
    const { rows } = await sql.query(`select count(*)::int as n from app_public.memberships where tenant_id = $1 and user_id = $2`, [a, uuidFromGlobalId('User', owner.id, 'u')]);
    expect(rows[0].n).toBe(1);
  });

  it('refuses a tampered, malformed or unknown key (UNAUTHENTICATED, 401)', async () => {
    const { secret } = await createKey(owner, tenantA.id, ['documents:read']);
    const last = secret.at(-1)!;
    const tampered = secret.slice(0, -1) + (last === 'A' ? 'B' : 'A');
    for (const bad of [tampered, secret.slice(0, -1), 'tpk_', `tpk_aaaaaaaaaaaa_${'A'.repeat(43)}`, `${secret}x`]) {
      const r = await withKey(bad).request(WHO);
      expect(r.errors?.[0]?.extensions?.code, bad).toBe('UNAUTHENTICATED');
      expect(r.status).toBe(401);
    }
    // The genuine one still works after the attempts.
    expect((await withKey(secret).ok(WHO)).me.id).toBe(owner.id);
  });

  it('records lastUsedAt and the ip without a write per request, and the first use from an ip in the audit log', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
    for (let i = 0; i < 5; i++) await withKey(secret).ok(WHO);
    const node = await poll(
      async () => {
        const list = await owner.gql.ok(LIST, { slug: tenantA.slug });
        const n = list.tenant.apiKeys.edges.map((e: any) => e.node).find((k: any) => k.id === apiKey.id);
        return n?.lastUsedAt ? n : null;
      },
      5000,
      'lastUsedAt',
    );
    expect(new Date(node.lastUsedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(node.lastUsedIp).toMatch(/127\.0\.0\.1/);
    await app.services.authenticator.apiKeys!.flush();
    const { rows } = await sql.query(`select last_used_at from app_public.api_keys where id = $1`, [rowUuid(apiKey.id)]);
    expect(rows[0].last_used_at).not.toBeNull();
    const audit = await owner.gql.ok(AUDIT, { slug: tenantA.slug });
    const firstUse = audit.tenant.auditLog.edges.map((e: any) => e.node).filter((n: any) => n.action === 'apiKeyUsedFromNewIp' && n.targetId === rowUuid(apiKey.id));
    expect(firstUse).toHaveLength(1);
    expect(firstUse[0].actor.id).toBe(owner.id);
    expect(firstUse[0].details.apiKeyId).toBe(rowUuid(apiKey.id));
  });

  it('writes lastUsedAt at most once a minute per key and process', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
    await withKey(secret).ok(WHO);
    await app.services.authenticator.apiKeys!.flush();
    const first = (await sql.query(`select last_used_at from app_public.api_keys where id = $1`, [rowUuid(apiKey.id)])).rows[0].last_used_at;
    expect(first).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1100)); // past the cache TTL: the key is looked up again, not written again
    for (let i = 0; i < 3; i++) await withKey(secret).ok(WHO);
    await app.services.authenticator.apiKeys!.flush();
    const second = (await sql.query(`select last_used_at from app_public.api_keys where id = $1`, [rowUuid(apiKey.id)])).rows[0].last_used_at;
    expect(second.getTime()).toBe(first.getTime());
  });

  it('audit entries of key requests name the key and its creator; creation and revocation are in the tenant’s log', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['*:*']);
    await withKey(secret).ok(RENAME, { i: { tenantId: tenantA.id, name: 'Renamed through a key' } });
    await owner.gql.ok(REVOKE, { id: apiKey.id });
    const audit = await admin.gql.ok(AUDIT, { slug: tenantA.slug });
    const entries = audit.tenant.auditLog.edges.map((e: any) => e.node);
    const rename = entries.find((n: any) => n.action === 'updateTenant' && n.details.apiKeyId === rowUuid(apiKey.id));
    expect(rename?.actor.id).toBe(owner.id);
    const created = entries.find((n: any) => n.action === 'createApiKey' && n.targetId === rowUuid(apiKey.id));
    expect(created?.details).toMatchObject({ prefix: apiKey.prefix, permissions: ['*:*'] });
    expect(JSON.stringify(created)).not.toContain(secret.slice(apiKey.prefix.length + 1));
    expect(entries.find((n: any) => n.action === 'revokeApiKey' && n.targetId === rowUuid(apiKey.id))?.actor.id).toBe(owner.id);
  });

  it('works over WebSocket (connection_init), and revoking it closes the socket', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['*:*']);
    const { client, closed } = connect(secret);
    const events: any[] = [];
    const errors: any[] = [];
    client.subscribe(
      { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action actor { id } } }`, variables: { t: tenantA.id } },
      { next: (v) => (v.errors ? errors.push(...v.errors) : events.push(v.data!.auditEvents)), error: (e) => errors.push(e), complete: () => undefined },
    );
    await poll(
      async () => {
        await owner.gql.ok(RENAME, { i: { tenantId: tenantA.id, name: `ws ${Date.now()}` } });
        return events.some((e) => e.action === 'updateTenant');
      },
      5000,
      'an event over the key’s socket',
    );
    expect(errors).toEqual([]);
    await owner.gql.ok(REVOKE, { id: apiKey.id });
    await poll(async () => closed(), 2000, 'the socket to close');
    expect(closed()!.code).toBe(4401);
    // A new connection with it is refused.
    const again = connect(secret);
    const refused: any[] = [];
    again.client.subscribe({ query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, variables: { t: tenantA.id } }, {
      next: () => undefined,
      error: (e) => refused.push(e),
      complete: () => undefined,
    });
    await poll(async () => again.closed(), 2000, 'the refused socket');
    expect(again.closed()!.code).toBe(4403);
  });

  it('works through the SDK ({ apiKey })', async () => {
    const { secret } = await createKey(owner, tenantA.id, ['api_keys:read', 'audit:read']);
    const sdk = createTenantplaneClient({ url: app.url, apiKey: secret });
    try {
      expect((await sdk.request(MeDocument)).me?.id).toBe(owner.id);
      const listed = await sdk.request(TenantApiKeysDocument, { slug: tenantA.slug, first: 5 });
      expect(listed.tenant?.apiKeys.totalCount).toBeGreaterThan(0);
      expect(JSON.stringify(listed)).not.toContain(secret.split('_').slice(2).join('_'));
      // Bound to its tenant in the SDK too.
      expect((await sdk.request(TenantApiKeysDocument, { slug: tenantB.slug })).tenant).toBeNull();
      // And over WebSocket (the same key in connection_init).
      const live = sdk.subscribe(AuditEventsDocument, { tenantId: tenantA.id });
      const first = live.next();
      await poll(
        async () => {
          await owner.gql.ok(RENAME, { i: { tenantId: tenantA.id, name: `sdk ${Date.now()}` } });
          return Promise.race([first.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 200))]);
        },
        5000,
        'an event through the SDK',
      );
      expect((await first).value?.auditEvents).toBeTruthy();
      live.dispose();
    } finally {
      await sdk.dispose();
    }
  });
});

describe('permissions at use (the catalogue, sql/0018)', () => {
  const bytes = Buffer.from('written through an API key\n');
  const uploadInput = (tenantId: string) => ({ i: { tenantId, filename: `k-${Date.now()}.txt`, sizeBytes: bytes.length, mimeType: 'text/plain', sha256: sha256hex(bytes) } });

  it('a key without documents:write cannot create a document; one with documents:* can', async () => {
    const reader = await createKey(owner, tenantA.id, ['documents:read', 'sites:read']);
    const refused = await withKey(reader.secret).request(CREATE_UPLOAD, uploadInput(tenantA.id));
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const writer = await createKey(owner, tenantA.id, ['documents:*']);
    const { document } = await uploadDocument({ gql: withKey(writer.secret) } as TestUser, tenantA.id, bytes);
    expect(document.uploader.email).toBe(owner.email);
  });

  it('a creator who loses a permission (ADMIN → VIEWER) takes it from their key at once', async () => {
    const demoted = await signUp(app, 'keydemoted');
    await addMember(owner, tenantA.id, demoted, 'ADMIN');
    const { secret } = await createKey(demoted, tenantA.id, ['documents:*']);
    const key = withKey(secret);
    expect((await key.request(CREATE_UPLOAD, uploadInput(tenantA.id))).errors).toBeUndefined();
    await owner.gql.ok(`mutation($i: ChangeMemberRoleInput!) { changeMemberRole(input: $i) { role } }`, {
      i: { tenantId: tenantA.id, userId: demoted.id, role: 'VIEWER' },
    });
    const after = await key.request(CREATE_UPLOAD, uploadInput(tenantA.id));
    expect(after.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // What a viewer still holds, the key still has.
    expect((await key.ok(`query($s: String!) { tenant(slug: $s) { documents(first: 1) { totalCount } } }`, { s: tenantA.slug })).tenant).not.toBeNull();
  });
});

describe('revocation and expiry', () => {
  it('a revoked key is refused at once by this process', async () => {
    const { secret, apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
    expect((await withKey(secret).ok(WHO)).me.id).toBe(owner.id);
    const revoked = await owner.gql.ok(REVOKE, { id: apiKey.id });
    expect(revoked.revokeApiKey).toMatchObject({ active: false, revokedBy: { id: owner.id } });
    expect(revoked.revokeApiKey.revokedAt).not.toBeNull();
    expect(await withKey(secret).code(WHO)).toBe('UNAUTHENTICATED');
    // Revoking again changes nothing; the key stays listed as revoked.
    const again = await owner.gql.ok(REVOKE, { id: apiKey.id });
    expect(again.revokeApiKey.revokedAt).toBe(revoked.revokeApiKey.revokedAt);
  });

  it('an expired key is refused', async () => {
    const { secret } = await createKey(owner, tenantA.id, ['documents:read'], { expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await withKey(secret).ok(WHO)).me.id).toBe(owner.id);
    await new Promise((r) => setTimeout(r, 1700));
    expect(await withKey(secret).code(WHO)).toBe('UNAUTHENTICATED');
  });

  describe('across API processes', () => {
    let api: ApiProcess;
    beforeAll(async () => {
      const storage = app.services.config.storage;
      api = await startApiProcess({ DATABASE_URL: app.databaseUrl, S3_ENDPOINT: storage.endpoint!, S3_BUCKET: storage.bucket, WORKERS: 'false' });
    }, 60_000);
    afterAll(async () => {
      await api?.stop();
    });

    it('a key revoked through one process is refused by another within a second', async () => {
      const { secret, apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
      const there = withKey(secret, api.app);
      // Used (and cached) there first.
      expect((await there.ok(WHO)).me.id).toBe(owner.id);
      expect((await there.ok(WHO)).me.id).toBe(owner.id);
      await owner.gql.ok(REVOKE, { id: apiKey.id });
      const revokedAt = Date.now();
      await poll(async () => (await there.code(WHO)) === 'UNAUTHENTICATED', 1000, 'the other process to refuse the key');
      expect(Date.now() - revokedAt).toBeLessThan(1100);
    });

    it('a socket opened on another process closes when the key is revoked', async () => {
      const { secret, apiKey } = await createKey(owner, tenantA.id, ['*:*']);
      const { client, closed } = connect(secret, api.app);
      const events: any[] = [];
      client.subscribe(
        { query: `subscription($t: ID!) { auditEvents(tenantId: $t) { action } }`, variables: { t: tenantA.id } },
        { next: (v) => events.push(v), error: () => undefined, complete: () => undefined },
      );
      await poll(
        async () => {
          await owner.gql.ok(RENAME, { i: { tenantId: tenantA.id, name: `proc ${Date.now()}` } });
          return events.length > 0;
        },
        5000,
        'the socket on the other process to be live',
      );
      await owner.gql.ok(REVOKE, { id: apiKey.id });
      await poll(async () => closed(), 2000, 'the socket to close');
      expect(closed()!.code).toBe(4401);
    });
  });
});

describe('in SQL, as tenantplane_app', () => {
  async function asApp<T>(settings: { userId: string; tenant?: string; apiKeyId?: string }, fn: () => Promise<T>) {
    await sql.query('begin');
    try {
      await sql.query(
        `select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true), set_config('app.tenant_id', $2, true), set_config('app.api_key_id', $3, true)`,
        [uuidFromGlobalId('User', settings.userId, 'u'), settings.tenant ?? '', settings.apiKeyId ?? ''],
      );
      return await fn();
    } finally {
      await sql.query('rollback');
    }
  }

  it('another tenant’s context cannot see, revoke or forge tenant A’s keys', async () => {
    const { apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
    const keyId = rowUuid(apiKey.id);
    const a = uuidFromGlobalId('Tenant', tenantA.id, 't');
    const c = uuidFromGlobalId('Tenant', tenantC.id, 't');
    for (const tenant of ['', c]) {
      const ctx = { userId: outsider.id, tenant };
      await asApp(ctx, async () => {
        expect((await sql.query(`select * from app_public.api_keys where tenant_id = $1`, [a])).rows).toEqual([]);
        const upd = await sql.query(`update app_public.api_keys set revoked_at = now(), revoked_by = $2 where id = $1`, [keyId, uuidFromGlobalId('User', outsider.id, 'u')]);
        expect(upd.rowCount).toBe(0);
        expect((await sql.query(`select app.current_api_key_permissions() as p`)).rows[0].p).toBeNull();
      });
      // A forged insert: refused by the insert trigger (permissions not held) or the policy, whichever speaks first.
      await asApp(ctx, () =>
        expect(
          sql.query(`insert into app_public.api_keys (tenant_id, name, identifier, permissions, created_by) values ($1, 'forged', 'forgedforged', '{documents:read}', $2)`, [a, uuidFromGlobalId('User', outsider.id, 'u')]),
        ).rejects.toMatchObject({ code: expect.stringMatching(/^(42501|TPFB0)$/) }),
      );
      await asApp(ctx, () => expect(sql.query(`select app.set_api_key_secret($1, $2, '\\x00'::bytea)`, [a, keyId])).rejects.toMatchObject({ code: 'TPNF0' }));
      await asApp(ctx, () => expect(sql.query(`delete from app_public.api_keys where id = $1`, [keyId])).rejects.toMatchObject({ code: '42501' }));
      await asApp({ ...ctx, apiKeyId: keyId }, async () => {
        expect((await sql.query(`select app.current_api_key_permissions() as p`)).rows[0].p).toEqual([]);
      });
    }
    // The owner with tenant B narrowing does not see A's keys either.
    await asApp({ userId: owner.id, tenant: uuidFromGlobalId('Tenant', tenantB.id, 't') }, async () => {
      expect((await sql.query(`select * from app_public.api_keys where id = $1`, [keyId])).rows).toEqual([]);
    });
    const { rows } = await sql.query(`select revoked_at from app_public.api_keys where id = $1`, [keyId]);
    expect(rows[0].revoked_at).toBeNull();
  });

  it('a key cannot be un-revoked, nor its usage columns written by the request role', async () => {
    const { apiKey } = await createKey(owner, tenantA.id, ['documents:read']);
    const keyId = rowUuid(apiKey.id);
    await owner.gql.ok(REVOKE, { id: apiKey.id });
    await asApp({ userId: owner.id }, async () => {
      await expect(sql.query(`update app_public.api_keys set revoked_at = null, revoked_by = null where id = $1`, [keyId])).rejects.toMatchObject({ code: 'TPCF0' });
    });
    await asApp({ userId: owner.id }, async () => {
      await expect(sql.query(`update app_public.api_keys set last_used_at = now() where id = $1`, [keyId])).rejects.toMatchObject({ code: '42501' });
    });
    await asApp({ userId: owner.id }, async () => {
      await expect(sql.query(`update app_public.api_keys set permissions = '{*:*}' where id = $1`, [keyId])).rejects.toMatchObject({ code: '42501' });
    });
  });

  it('app.current_api_key_permissions(): NULL without a key, the key’s patterns in its tenant, {} otherwise', async () => {
    const { apiKey } = await createKey(owner, tenantA.id, ['documents:read', 'sites:*']);
    const keyId = rowUuid(apiKey.id);
    const a = uuidFromGlobalId('Tenant', tenantA.id, 't');
    const b = uuidFromGlobalId('Tenant', tenantB.id, 't');
    const perms = async (s: { userId: string; tenant?: string; apiKeyId?: string }) =>
      asApp(s, async () => (await sql.query(`select app.current_api_key_permissions() as p`)).rows[0].p);
    expect(await perms({ userId: owner.id, tenant: a })).toBeNull();
    expect(await perms({ userId: owner.id, tenant: a, apiKeyId: 'not-a-uuid' })).toBeNull();
    expect(await perms({ userId: owner.id, tenant: a, apiKeyId: keyId })).toEqual(['documents:read', 'sites:*']);
    expect(await perms({ userId: owner.id, tenant: b, apiKeyId: keyId })).toEqual([]);
    expect(await perms({ userId: owner.id, tenant: tenantA.slug, apiKeyId: keyId })).toEqual([]);
    expect(await perms({ userId: owner.id, apiKeyId: keyId })).toEqual([]);
    expect(await perms({ userId: admin.id, tenant: a, apiKeyId: keyId })).toEqual([]);
    expect(await perms({ userId: owner.id, tenant: a, apiKeyId: '00000000-0000-4000-8000-000000000000' })).toEqual([]);
    await owner.gql.ok(REVOKE, { id: apiKey.id });
    expect(await perms({ userId: owner.id, tenant: a, apiKeyId: keyId })).toEqual([]);
  });
});
