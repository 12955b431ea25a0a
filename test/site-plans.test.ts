import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { createTenant, signUp, type TestUser, rowUuid } from './support/client.ts';
import { poll } from './support/workers.ts';

/**
 * Issue 10 §2, site plans: a site measured against its plan (on demand and by the periodic job), its usage shown,
 * changeSitePlan applying the new limits to the site's login, and a site over its storage limit refused new writes —
 * by its own PostgreSQL privileges, as the tenant's application sees it — until it has made room.
 */
let app: TestApp;
let db: pg.Client;
let owner: TestUser, outsider: TestUser;
let tenant: { id: string; slug: string };
const clients: pg.Client[] = [];
const TINY = `site-tiny-${process.pid}`;

const SITE = `query($id: ID!) { node(id: $id) { ... on Site { id status overStorageLimit plan { name connectionLimit } connection { host port database user }
  usage { databaseBytes fileBytes totalBytes limitBytes fraction overStorageLimit measuredAt } } } }`;

let site: { id: string; uuid: string; password: string; connection: { host: string; port: number; database: string; user: string } };

async function jobDone(user: TestUser, jobId: string) {
  return poll(
    async () => {
      const j = (await user.gql.ok(`query($id: ID!) { node(id: $id) { ... on Job { status error result } } }`, { id: jobId })).node;
      if (j.status === 'FAILED') throw new Error(`the job failed: ${j.error}`);
      return j.status === 'COMPLETED' ? j : undefined;
    },
    30_000,
    'the job',
  );
}

async function measure() {
  const r = (await owner.gql.ok(`mutation($s: ID!) { measureSite(siteId: $s) { job { id type } } }`, { s: site.id })).measureSite;
  expect(r.job.type).toBe('site-measure');
  await jobDone(owner, r.job.id);
  return (await owner.gql.ok(SITE, { id: site.id })).node;
}

async function appClient() {
  const c = new pg.Client({ ...site.connection, password: site.password });
  await c.connect();
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

const sqlError = (p: Promise<unknown>) => p.then(() => null, (e: { code?: string; message: string }) => `${e.code} ${e.message}`);

beforeAll(async () => {
  app = await startTestApp();
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  owner = await signUp(app, 'plans-owner');
  outsider = await signUp(app, 'plans-outsider');
  tenant = await createTenant(owner, 'plans');
  await createTenant(outsider, 'plans-other');
  // A plan small enough to fill in a test (plans are catalogue rows, like the seeded ones).
  await db.query(
    `insert into app_public.site_plans (id, title, storage_limit_bytes, connection_limit, statement_timeout_ms, isolation) values ($1, 'Tiny', 400000, 3, 5000, 'SCHEMA')`,
    [TINY],
  );
  const created = (
    await owner.gql.ok(`mutation($i: CreateSiteInput!) { createSite(input: $i) { password site { id } } }`, {
      i: { tenantId: tenant.id, name: `plans-${process.pid}`, displayName: 'Plans', apps: ['notes'] },
    })
  ).createSite;
  const healthy = await poll(
    async () => {
      const s = (await owner.gql.ok(SITE, { id: created.site.id })).node;
      return s.status === 'HEALTHY' ? s : undefined;
    },
    30_000,
    'the site to be healthy',
  );
  site = { id: created.site.id, uuid: rowUuid(created.site.id), password: created.password, connection: healthy.connection };
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await db?.query(`update app_public.sites set plan_id = 'site-free' where plan_id = $1`, [TINY]).catch(() => undefined);
  await db?.query(`delete from app_public.site_plans where id = $1`, [TINY]).catch(() => undefined);
  await db?.end();
  await app?.stop();
});

describe('measuring a site against its plan', () => {
  it('measureSite records the schema and file bytes against the plan; TenantSchema.sizeBytes follows', async () => {
    const s = await measure();
    expect(s.plan.name).toBe('site-free');
    expect(BigInt(s.usage.databaseBytes)).toBeGreaterThan(0n);
    expect(BigInt(s.usage.limitBytes)).toBe(104857600n);
    expect(BigInt(s.usage.totalBytes)).toBe(BigInt(s.usage.databaseBytes) + BigInt(s.usage.fileBytes));
    expect(s.usage.fraction).toBeGreaterThan(0);
    expect(s.usage.overStorageLimit).toBe(false);
    const schema = await db.query(`select size_bytes::text from app_public.tenant_schemas where site_id = $1`, [site.uuid]);
    expect(schema.rows[0].size_bytes).toBe(String(s.usage.databaseBytes));
  });

  it('the periodic job measures every live site', async () => {
    await db.query(`update app_public.sites set measured_at = null, database_bytes = null where id = $1`, [site.uuid]);
    await db.query(`select app_private.insert_boss_job('site-measure-all', '{}')`);
    const s = await poll(
      async () => {
        const n = (await owner.gql.ok(SITE, { id: site.id })).node;
        return n.usage ? n : undefined;
      },
      30_000,
      'the periodic measure',
    );
    expect(BigInt(s.usage.databaseBytes)).toBeGreaterThan(0n);
  });
});

describe('changeSitePlan', () => {
  it('applies the new plan to the login (connection limit, statement timeout) and is audited', async () => {
    const r = (await owner.gql.ok(`mutation($s: ID!, $p: String!) { changeSitePlan(siteId: $s, plan: $p) { site { plan { name } } job { id type } } }`, { s: site.id, p: TINY }))
      .changeSitePlan;
    expect(r.site.plan.name).toBe(TINY);
    expect(r.job.type).toBe('site-apply-plan');
    await jobDone(owner, r.job.id);
    const role = await db.query(`select rolconnlimit, rolconfig from pg_roles where rolname = $1`, [site.connection.user]);
    expect(role.rows[0].rolconnlimit).toBe(3);
    expect(role.rows[0].rolconfig).toContain('statement_timeout=5000');
    const audit = await db.query(`select details from app_public.audit_events where tenant_id = $1 and action = 'changeSitePlan' and outcome = 'SUCCESS'`, [decodeGlobalID(tenant.id).id]);
    expect(audit.rows.map((a) => a.details)).toContainEqual({ from: 'site-free', to: TINY });
    const s = (await owner.gql.ok(SITE, { id: site.id })).node;
    expect(BigInt(s.usage.limitBytes)).toBe(400000n);
  });

  it('refuses readably: an unknown plan, the same plan (a plan of the other isolation level moves the site: test/site-move.test.ts)', async () => {
    const change = async (p: string) => (await owner.gql.request(`mutation($s: ID!, $p: String!) { changeSitePlan(siteId: $s, plan: $p) { job { id } } }`, { s: site.id, p })).errors!;
    const unknown = (await change('no-such-plan'))[0];
    expect(unknown.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'plan' });
    expect((await change(TINY))[0].message).toMatch(/already on the Tiny plan/);
  });

  it('another tenant can neither change nor measure the site, through GraphQL or in SQL as the request role', async () => {
    expect(await outsider.gql.code(`mutation($s: ID!) { changeSitePlan(siteId: $s, plan: "site-pro") { job { id } } }`, { s: site.id })).toMatch(/NOT_FOUND|FORBIDDEN/);
    expect(await outsider.gql.code(`mutation($s: ID!) { measureSite(siteId: $s) { job { id } } }`, { s: site.id })).toMatch(/NOT_FOUND|FORBIDDEN/);
    // What an injection would have: the request role, in the outsider's context and in the owner's own.
    for (const userId of [decodeGlobalID(outsider.id).id, decodeGlobalID(owner.id).id]) {
      await db.query('begin');
      try {
        await db.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true)`, [userId]);
        const flag = await sqlError(db.query(`update app_public.sites set over_storage_limit = false, database_bytes = 0 where id = $1`, [site.uuid]));
        expect(flag).toMatch(/^42501/);
      } finally {
        await db.query('rollback');
      }
    }
    await db.query('begin');
    try {
      await db.query(`select set_config('role', 'tenantplane_app', true), set_config('app.user_id', $1, true)`, [decodeGlobalID(outsider.id).id]);
      const moved = await db.query(`update app_public.sites set plan_id = 'site-pro' where id = $1`, [site.uuid]);
      expect(moved.rowCount).toBe(0);
    } finally {
      await db.query('rollback');
    }
  });
});

describe('over the storage limit', () => {
  it('a site that outgrows its plan is flagged; its login may read and delete but not write, until it is back under', async () => {
    const writer = await appClient();
    await writer.query(`insert into notes (title, body) select 'filler ' || g, repeat(md5(g::text), 20) from generate_series(1, 2000) g`);
    const over = await measure();
    expect(over.usage.overStorageLimit).toBe(true);
    expect(over.overStorageLimit).toBe(true);
    expect(over.usage.fraction).toBeGreaterThan(1);
    // Its open session was ended; a new one reads, and cannot insert, update, or create.
    expect(await sqlError(writer.query('select 1'))).not.toBeNull();
    const reader = await appClient();
    expect((await reader.query(`select count(*)::int as n from notes`)).rows[0].n).toBe(2000);
    expect(await sqlError(reader.query(`insert into notes (title) values ('one more')`))).toMatch(/^42501/);
    expect(await sqlError(reader.query(`update notes set title = 'x'`))).toMatch(/^42501/);
    expect(await sqlError(reader.query(`create table more (id int)`))).toMatch(/^42501/);
    // Nor can it take its owner role back.
    expect(await sqlError(reader.query(`set role ${site.connection.user}_owner`))).toMatch(/^42501/);

    // It makes room; the next measure counts what was deleted and gives the writes back.
    await reader.query(`delete from notes`);
    const under = await measure();
    expect(under.usage.overStorageLimit).toBe(false);
    const back = await appClient();
    await back.query(`insert into notes (title) values ('room again')`);
    expect((await back.query(`select current_user`)).rows[0].current_user).toBe(`${site.connection.user}_owner`);
  });
});
