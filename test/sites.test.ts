import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app.ts';
import { signUp, createTenant, addMember, type TestUser, rowUuid } from './support/client.ts';

/** Sites through GraphQL: provisioning by a job whose progress streams live, the lifecycle, and isolation. */
let app: TestApp;
let owner: TestUser, member: TestUser, outsider: TestUser;
let tenant: { id: string; slug: string };
let other: { id: string; slug: string };
let sql: pg.Client;
let siteSql: pg.Client;
const clients: Client[] = [];

const CREATE = `mutation($i: CreateSiteInput!) { createSite(input: $i) { password site { id name status domain apps } job { id status type progress } } }`;
const SITE = `query($id: ID!) { node(id: $id) { ... on Site { id name status schemaName sizeBytes apps connection { host port database user sslMode } jobs { edges { node { id status progress step logs attempts } } } } } }`;

function ws(token: string) {
  const c = createClient({ url: app.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
  clients.push(c);
  return c;
}

async function waitForSite(user: TestUser, id: string, statuses: string[], ms = 20000) {
  const start = Date.now();
  for (;;) {
    const s = (await user.gql.ok(SITE, { id })).node;
    if (s && statuses.includes(s.status)) return s;
    if (Date.now() - start > ms) throw new Error(`site still ${s?.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  app = await startTestApp();
  owner = await signUp(app, 'owner');
  member = await signUp(app, 'member');
  outsider = await signUp(app, 'outsider');
  tenant = await createTenant(owner, 'sites');
  other = await createTenant(outsider, 'other-sites');
  await addMember(owner, tenant.id, member, 'MEMBER');
  sql = new pg.Client({ connectionString: app.databaseUrl });
  await sql.connect();
  siteSql = new pg.Client({ connectionString: app.sitesDatabaseUrl });
  await siteSql.connect();
  await sql.query(`update app_public.tenants set plan_id = 'pro' where slug = $1`, [tenant.slug]);
});
afterAll(async () => {
  for (const c of clients) await c.dispose();
  await sql?.end();
  await siteSql?.end();
  await app?.stop();
});

describe('site provisioning', () => {
  it('create → provisioned → healthy, with progress rising to 100 live over a subscription', async () => {
    const name = `shop-${process.pid}`;
    // Subscribe to the tenant's jobs first, then create: every change of the provisioning job arrives.
    const events: any[] = [];
    const client = ws(owner.gql.token!);
    const done = new Promise<void>((resolve, reject) => {
      client.subscribe(
        { query: `subscription($t: ID!) { tenantJobs(tenantId: $t) { id type status progress step site { name status } } }`, variables: { t: tenant.id } },
        {
          next: (v) => {
            if (v.errors) return reject(new Error(JSON.stringify(v.errors)));
            const job = (v.data as any).tenantJobs;
            events.push(job);
            if (job.status === 'COMPLETED' || job.status === 'FAILED') resolve();
          },
          error: reject,
          complete: () => resolve(),
        },
      );
    });
    // Wait until the subscription is live (the server confirms nothing, so probe with a harmless job-less delay).
    await new Promise((r) => setTimeout(r, 300));
    const created = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name, displayName: 'My Shop', apps: ['notes', 'crm'] } })).createSite;
    expect(created.site).toMatchObject({ name, status: 'PENDING', domain: `${name}.sites.localhost`, apps: ['notes', 'crm'] });
    expect(created.job).toMatchObject({ status: 'PENDING', type: 'site-provision', progress: 0 });
    await done;
    const progress = events.filter((e) => e.id === created.job.id).map((e) => e.progress);
    expect(progress.length).toBeGreaterThan(3);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(progress.at(-1)).toBe(100);
    expect(events.at(-1)).toMatchObject({ status: 'COMPLETED', site: { name, status: 'HEALTHY' } });

    const site = await waitForSite(owner, created.site.id, ['HEALTHY']);
    expect(site.schemaName).toMatch(/^site_[0-9a-f]{32}$/);
    expect(site.sizeBytes).toBeGreaterThan(0);
    expect(site.jobs.edges[0].node).toMatchObject({ status: 'COMPLETED', progress: 100, attempts: 1 });
    // The schema holds the apps' tables and is owned by the site's own role.
    const tables = await siteSql.query(`select table_name from information_schema.tables where table_schema = $1 order by 1`, [site.schemaName]);
    expect(tables.rows.map((r) => r.table_name)).toEqual(['contacts', 'deals', 'notes']);
    const owners = await siteSql.query(`select nspowner::regrole::text as owner from pg_namespace where nspname = $1`, [site.schemaName]);
    expect(owners.rows[0].owner).toBe(`${site.schemaName}_owner`);
    const recorded = await sql.query(`select owner_role, size_bytes from app_public.tenant_schemas where schema_name = $1`, [site.schemaName]);
    expect(recorded.rows[0].owner_role).toBe(`${site.schemaName}_owner`);
  });

  it('a site role sees its own schema and nothing else', async () => {
    const a = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `iso-a-${process.pid}`, displayName: 'A', apps: ['notes'] } })).createSite;
    const b = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `iso-b-${process.pid}`, displayName: 'B', apps: ['notes'] } })).createSite;
    const sa = await waitForSite(owner, a.site.id, ['HEALTHY']);
    const sb = await waitForSite(owner, b.site.id, ['HEALTHY']);
    expect(a.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // The tenant's own application: the connection details and the password shown once.
    expect(sa.connection).toMatchObject({ user: sa.schemaName, port: expect.any(Number), sslMode: 'disable' });
    const appClient = new pg.Client({ ...pgConfig(sa.connection), password: a.password });
    await appClient.connect();
    try {
      // It lands in its own schema as its owner role, and may create and write there.
      expect((await appClient.query(`select current_user, current_schema()`)).rows[0]).toEqual({ current_user: `${sa.schemaName}_owner`, current_schema: sa.schemaName });
      await appClient.query(`insert into notes (title) values ('mine')`);
      await appClient.query(`create table mine (id int)`);
      for (const probe of [`select * from "${sb.schemaName}".notes`, `create table "${sb.schemaName}".x (id int)`, `select * from public.nothing`, `set role "${sb.schemaName}_owner"`]) {
        await expect(appClient.query(probe), probe).rejects.toThrow(/permission denied|does not exist/);
      }
      // Its login role itself holds nothing (SET ROLE NONE: back to the session user; RESET ROLE goes back to the owner role).
      await appClient.query(`set role none`);
      await expect(appClient.query(`select * from "${sa.schemaName}".notes`)).rejects.toThrow(/permission denied/);
    } finally {
      await appClient.end();
    }
    // The control-plane database (pooled tables), and another site's password, let it nowhere.
    const controlDb = new URL(app.databaseUrl).pathname.slice(1);
    await expect(connectAs({ ...pgConfig(sa.connection), database: controlDb, password: a.password })).rejects.toThrow(/permission denied for database|not have CONNECT/);
    await expect(connectAs({ ...pgConfig(sb.connection), password: a.password })).rejects.toThrow(/password authentication failed/);
    // The right one works for the other site, which sees the first site's note nowhere.
    const other = await connectAs({ ...pgConfig(sb.connection), password: b.password });
    expect((await other.query(`select count(*)::int as n from notes`)).rows[0].n).toBe(0);
    await other.end();
  });

  it('resetSitePassword shows a new password once; the job applies it and the old one stops working', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `pw-${process.pid}`, displayName: 'Pw', apps: ['notes'] } })).createSite;
    const site = await waitForSite(owner, c.site.id, ['HEALTHY']);
    const held = await connectAs({ ...pgConfig(site.connection), password: c.password });
    const reset = (await owner.gql.ok(`mutation($s: ID!) { resetSitePassword(siteId: $s) { password job { id } } }`, { s: c.site.id })).resetSitePassword;
    expect(reset.password).not.toBe(c.password);
    await waitForJob(owner, reset.job.id, 'COMPLETED');
    await expect(connectAs({ ...pgConfig(site.connection), password: c.password })).rejects.toThrow(/password authentication failed/);
    const fresh = await connectAs({ ...pgConfig(site.connection), password: reset.password });
    await fresh.end();
    // The session opened with the old password was ended.
    await expect(held.query('select 1')).rejects.toThrow();
    await held.end().catch(() => undefined);
    // A member cannot reset it; another tenant finds no such site.
    expect((await member.gql.request(`mutation($s: ID!) { resetSitePassword(siteId: $s) { password } }`, { s: c.site.id })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await outsider.gql.request(`mutation($s: ID!) { resetSitePassword(siteId: $s) { password } }`, { s: c.site.id })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    // The password is never readable again, not even by the owner, and it is not in the control plane in clear.
    const stored = await sql.query(`select sealed from app_private.site_secrets where site_id = $1`, [rowUuid(c.site.id)]);
    expect(stored.rows[0].sealed).not.toContain(reset.password);
  });
});

/** site.connection as node-postgres takes it. */
function pgConfig(c: { host: string; port: number; database: string; user: string }): pg.ClientConfig {
  return { host: c.host, port: c.port, database: c.database, user: c.user };
}

async function connectAs(config: pg.ClientConfig) {
  const c = new pg.Client(config);
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (e) {
    await c.end().catch(() => undefined);
    throw e;
  }
  return c;
}

async function waitForJob(user: any, jobId: string, status: string, ms = 20000) {
  const start = Date.now();
  for (;;) {
    const j = (await user.gql.ok(`query($id: ID!) { node(id: $id) { ... on Job { status error } } }`, { id: jobId })).node;
    if (j?.status === status) return j;
    if (j?.status === 'FAILED' && status !== 'FAILED') throw new Error(`job failed: ${j.error}`);
    if (Date.now() - start > ms) throw new Error(`job still ${j?.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('lifecycle and bad input', () => {
  it('refuses invalid, reserved and duplicate names, unknown apps, and more sites than the plan allows', async () => {
    const code = async (i: Record<string, unknown>) => (await owner.gql.request(CREATE, { i: { tenantId: tenant.id, displayName: 'X', ...i } })).errors?.[0]?.extensions;
    for (const name of ['ab', 'Has_Upper', '-x-', 'a--b', 'x'.repeat(64)]) expect(await code({ name }), name).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    for (const name of ['admin', 'www', 'mail']) expect(await code({ name }), name).toMatchObject({ code: 'BAD_USER_INPUT', field: 'name' });
    expect(await code({ name: `shop-${process.pid}` })).toMatchObject({ code: 'CONFLICT', field: 'name' });
    expect(await code({ name: `apps-${process.pid}`, apps: ['wordpress'] })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'apps' });
    // Members cannot create sites.
    expect((await member.gql.request(CREATE, { i: { tenantId: tenant.id, name: `m-${process.pid}`, displayName: 'M' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // The free plan allows 2 sites.
    const free = await createTenant(owner, 'free-sites');
    for (const n of [1, 2]) await owner.gql.ok(CREATE, { i: { tenantId: free.id, name: `free-${n}-${process.pid}`, displayName: 'F' } });
    const over = await owner.gql.request(CREATE, { i: { tenantId: free.id, name: `free-3-${process.pid}`, displayName: 'F' } });
    expect(over.errors?.[0]?.extensions?.code).toBe('QUOTA_EXCEEDED');
  });

  it('suspend, resume, delete with retention; illegal transitions name the current state', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `life-${process.pid}`, displayName: 'Life' } })).createSite;
    await waitForSite(owner, c.site.id, ['HEALTHY']);
    const act = (m: string) => owner.gql.request(`mutation($s: ID!) { ${m}(siteId: $s) { status deletedAt retentionUntil } }`, { s: c.site.id });
    const bad = await act('resumeSite');
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'siteId' });
    expect(bad.errors?.[0]?.message).toMatch(/HEALTHY/);
    expect((await act('suspendSite')).data?.suspendSite.status).toBe('SUSPENDED');
    expect((await act('resumeSite')).data?.resumeSite.status).toBe('HEALTHY');
    const retry = await owner.gql.request(`mutation($s: ID!) { retrySiteProvisioning(siteId: $s) { job { id } } }`, { s: c.site.id });
    expect(retry.errors?.[0]?.message).toMatch(/HEALTHY/);
    const deleted = (await act('deleteSite')).data!.deleteSite;
    expect(deleted.status).toBe('SOFT_DELETED');
    const days = (new Date(deleted.retentionUntil).getTime() - new Date(deleted.deletedAt).getTime()) / 86400_000;
    expect(Math.round(days)).toBe(30);
    expect((await act('suspendSite')).errors?.[0]?.message).toMatch(/SOFT_DELETED/);
    const cfg = await owner.gql.request(`mutation($s: ID!, $c: JSON!) { updateSiteConfig(siteId: $s, config: $c) { config } }`, { s: c.site.id, c: { a: 1 } });
    expect(cfg.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('after retention the purge job drops the schema, the role and the files, and the site is DELETED', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `purge-${process.pid}`, displayName: 'Purge', apps: ['notes'] } })).createSite;
    const site = await waitForSite(owner, c.site.id, ['HEALTHY']);
    await owner.gql.ok(`mutation($s: ID!) { deleteSite(siteId: $s) { status } }`, { s: c.site.id });
    await sql.query(`update app_public.sites set retention_until = now() - interval '1 minute' where name = $1`, [`purge-${process.pid}`]);
    await app.services.jobs.send('site-purge', {});
    const deleted = await waitForSite(owner, c.site.id, ['DELETED']);
    expect(deleted.schemaName).toBeNull();
    expect((await siteSql.query(`select 1 from pg_namespace where nspname = $1`, [site.schemaName])).rowCount).toBe(0);
    expect((await sql.query(`select 1 from pg_roles where rolname = any($1)`, [[`${site.schemaName}_owner`, site.schemaName]])).rowCount).toBe(0);
    expect((await sql.query(`select 1 from app_private.site_secrets where site_id = $1`, [rowUuid(c.site.id)])).rowCount).toBe(0);
    expect((await sql.query(`select 1 from app_public.tenant_schemas where schema_name = $1`, [site.schemaName])).rowCount).toBe(0);
    const tenantUuid = (await sql.query(`select id from app_public.tenants where slug = $1`, [tenant.slug])).rows[0].id;
    const siteUuid = rowUuid(c.site.id);
    expect(await app.services.storage.list(`tenants/${tenantUuid}/sites/${siteUuid}/`)).toEqual([]);
    // DELETED is final.
    expect((await owner.gql.request(`mutation($s: ID!) { resumeSite(siteId: $s) { id } }`, { s: c.site.id })).errors?.[0]?.message).toMatch(/DELETED/);
  });

  it('updateSiteConfig takes a JSON object only', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `cfg-${process.pid}`, displayName: 'Cfg' } })).createSite;
    const Q = `mutation($s: ID!, $c: JSON!) { updateSiteConfig(siteId: $s, config: $c) { config } }`;
    expect((await owner.gql.ok(Q, { s: c.site.id, c: { theme: 'dark', features: { beta: true } } })).updateSiteConfig.config).toEqual({ theme: 'dark', features: { beta: true } });
    for (const bad of [[1, 2], 'text', 42]) {
      expect((await owner.gql.request(Q, { s: c.site.id, c: bad })).errors?.[0]?.extensions, JSON.stringify(bad)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'config' });
    }
  });
});

describe('isolation', () => {
  it('another tenant cannot see, cancel, change or subscribe to our sites and jobs', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `priv-${process.pid}`, displayName: 'Private' } })).createSite;
    const q = outsider.gql;
    expect((await q.ok(SITE, { id: c.site.id })).node).toBeNull();
    expect((await q.ok(`query($id: ID!) { node(id: $id) { id } }`, { id: c.job.id })).node).toBeNull();
    expect((await q.ok(`query($s: String!) { tenant(slug: $s) { sites { totalCount } jobs { totalCount } } }`, { s: tenant.slug })).tenant).toBeNull();
    for (const m of ['suspendSite', 'resumeSite', 'deleteSite']) {
      expect(await q.code(`mutation($s: ID!) { ${m}(siteId: $s) { id } }`, { s: c.site.id }), m).toBe('NOT_FOUND');
    }
    expect(await q.code(`mutation($s: ID!) { retrySiteProvisioning(siteId: $s) { job { id } } }`, { s: c.site.id })).toBe('NOT_FOUND');
    expect(await q.code(`mutation($s: ID!, $c: JSON!) { updateSiteConfig(siteId: $s, config: $c) { id } }`, { s: c.site.id, c: {} })).toBe('NOT_FOUND');
    expect(await q.code(`mutation($j: ID!) { cancelJob(jobId: $j) { id } }`, { j: c.job.id })).toBe('NOT_FOUND');
    expect(await q.code(CREATE, { i: { tenantId: tenant.id, name: `intruder-${process.pid}`, displayName: 'X' } })).toBe('NOT_FOUND');
    for (const [query, variables] of [
      [`subscription($j: ID!) { jobUpdated(jobId: $j) { id } }`, { j: c.job.id }],
      [`subscription($t: ID!) { tenantJobs(tenantId: $t) { id } }`, { t: tenant.id }],
    ] as const) {
      const errors: any[] = [];
      await new Promise<void>((resolve) => {
        ws(outsider.gql.token!).subscribe({ query, variables }, { next: (v) => (v.errors ? errors.push(...v.errors) : errors.push('EVENT')), error: () => resolve(), complete: () => resolve() });
      });
      expect(errors[0]?.extensions?.code, query).toBe('NOT_FOUND');
    }
    void other;
    await waitForSite(owner, c.site.id, ['HEALTHY']);
  });

  it('cancelJob: members cancel their own jobs only; a finished job cannot be cancelled', async () => {
    const c = (await owner.gql.ok(CREATE, { i: { tenantId: tenant.id, name: `cancel-${process.pid}`, displayName: 'C' } })).createSite;
    expect(await member.gql.code(`mutation($j: ID!) { cancelJob(jobId: $j) { id } }`, { j: c.job.id })).toBe('FORBIDDEN');
    await waitForSite(owner, c.site.id, ['HEALTHY', 'FAILED']);
    // The job is marked finished just after the site: wait for it too.
    for (let i = 0; i < 100; i++) {
      const j = (await owner.gql.ok(`query($id: ID!) { node(id: $id) { ... on Job { status } } }`, { id: c.job.id })).node;
      if (j.status === 'COMPLETED' || j.status === 'FAILED') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await owner.gql.code(`mutation($j: ID!) { cancelJob(jobId: $j) { id } }`, { j: c.job.id })).toBe('CONFLICT');
  });
});
