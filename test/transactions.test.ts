import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { startTestApp, type TestApp } from './support/app.ts';
import { Gql, addMember, createTenant, signUp, type TestUser } from './support/client.ts';
import type { Tx } from '../src/db/database.ts';

/**
 * One request = one transaction (src/graphql/server.ts, src/db/database.ts): a failure anywhere in it leaves
 * nothing behind, and a pooled connection hands nothing of one transaction's context to the next.
 * The app runs with a pool of ONE connection, so consecutive transactions provably share it.
 */
let app: TestApp;
let db: pg.Client;
let owner: TestUser;
let member: TestUser;
let tenant: { id: string; slug: string };
let tenantUuid: string;

const uuidOf = (globalId: string) => decodeGlobalID(globalId).id;

beforeAll(async () => {
  app = await startTestApp({ DATABASE_POOL_SIZE: '1' });
  db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  owner = await signUp(app, 'tx-owner');
  member = await signUp(app, 'tx-member');
  tenant = await createTenant(owner, 'tx');
  tenantUuid = uuidOf(tenant.id);
  await addMember(owner, tenant.id, member, 'MEMBER');
});
afterAll(async () => {
  await db?.end();
  await app?.stop();
});

async function auditActions(since: number) {
  const { rows } = await db.query(
    `select action, outcome from app_public.audit_events where tenant_id = $1 and id > $2 order by id`,
    [tenantUuid, since],
  );
  return rows as { action: string; outcome: string }[];
}
async function lastAuditId(): Promise<number> {
  const { rows } = await db.query(`select coalesce(max(id), 0)::int as id from app_public.audit_events`);
  return rows[0].id;
}

describe('a request that fails midway writes nothing', () => {
  it('two createTenant mutations, the second a duplicate slug: the first tenant does not exist afterwards', async () => {
    const slug = `tx-first-${crypto.randomBytes(3).toString('hex')}`;
    const before = await lastAuditId();
    const r = await owner.gql.request(
      `mutation($a: CreateTenantInput!, $b: CreateTenantInput!) {
         a: createTenant(input: $a) { id slug }
         b: createTenant(input: $b) { id }
       }`,
      { a: { name: 'First', slug }, b: { name: 'Duplicate', slug: tenant.slug } },
    );
    expect(r.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['CONFLICT', ['b']]]);
    const { rows } = await db.query(`select count(*)::int as n from app_public.tenants where slug = $1`, [slug]);
    expect(rows[0].n).toBe(0);
    const owned = await db.query(`select count(*)::int as n from app_public.memberships where user_id = $1`, [uuidOf(owner.id)]);
    expect(owned.rows[0].n).toBe(1);
    const audit = await db.query(`select count(*)::int as n from app_public.audit_events where id > $1`, [before]);
    expect(audit.rows[0].n).toBe(0);
  });

  it('updateTenant then a failing inviteMember: the rename is undone, only the FAILURE entry remains', async () => {
    const before = await lastAuditId();
    const { rows: nameBefore } = await db.query(`select name, updated_at from app_public.tenants where id = $1`, [tenantUuid]);
    const r = await owner.gql.request(
      `mutation($t: ID!, $email: String!) {
         a: updateTenant(input: { tenantId: $t, name: "Renamed in a failed request" }) { id name }
         b: inviteMember(input: { tenantId: $t, email: $email, role: VIEWER }) { id }
       }`,
      { t: tenant.id, email: member.email },
    );
    expect(r.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['CONFLICT', ['b']]]);
    const { rows: nameAfter } = await db.query(`select name, updated_at from app_public.tenants where id = $1`, [tenantUuid]);
    expect(nameAfter).toEqual(nameBefore);
    // updateTenant's SUCCESS entry went with the rollback; the failed mutation is recorded after it (audited()).
    expect(await auditActions(before)).toEqual([{ action: 'inviteMember', outcome: 'FAILURE' }]);
  });

  it('a mutation whose second write fails keeps none of its first', async () => {
    // leaveTenant writes its audit entry, then deletes the membership; the last owner cannot leave, so the delete fails.
    const before = await lastAuditId();
    const code = await owner.gql.code(`mutation($t: ID!) { leaveTenant(tenantId: $t) }`, { t: tenant.id });
    expect(code).toBe('CONFLICT');
    const { rows } = await db.query(`select role from app_public.memberships where tenant_id = $1 and user_id = $2`, [tenantUuid, uuidOf(owner.id)]);
    expect(rows).toEqual([{ role: 'OWNER' }]);
    expect(await auditActions(before)).toEqual([{ action: 'leaveTenant', outcome: 'FAILURE' }]);
  });
});

interface Seen {
  u: string | null;
  t: string | null;
  r: string | null;
  role: string;
  pid: number;
}

const probe = (tx: Tx) =>
  tx.$queryRaw<Seen[]>`select current_setting('app.user_id', true) as u, current_setting('app.tenant_id', true) as t,
    current_setting('app.request_id', true) as r, current_user::text as role, pg_backend_pid() as pid`.then((rows) => rows[0]!);

describe('a pooled connection inherits nothing from the previous transaction', () => {
  const userX = crypto.randomUUID();
  const ctx = { userId: userX, tenant: 'some-slug', requestId: 'req-1' };

  /** The state of the one pooled connection between transactions, and then inside an empty-context one. */
  async function expectClean(pid: number) {
    const services = app.services;
    expect(services.db.pool.totalCount).toBeLessThanOrEqual(1);
    // Outside any transaction: the role is back to the login role, and app.* are empty.
    const raw = await services.db.pool.query(
      `select current_setting('app.user_id', true) as u, current_setting('app.tenant_id', true) as t,
              current_setting('app.request_id', true) as r, current_user::text as role, session_user::text as session,
              (select setting = reset_val from pg_settings where name = 'statement_timeout') as timeout_reset, pg_backend_pid() as pid`,
    );
    const s = raw.rows[0];
    expect(s.pid).toBe(pid);
    expect(s.u ?? '').toBe('');
    expect(s.t ?? '').toBe('');
    expect(s.r ?? '').toBe('');
    expect(s.role).toBe(s.session);
    expect(s.role).not.toBe('tenantplane_app');
    expect(s.timeout_reset).toBe(true); // the request's local statement_timeout is gone too
    // Inside a new transaction without context.
    const seen = await services.db.withContext({}, probe);
    expect(seen.pid).toBe(pid);
    expect(seen.u ?? '').toBe('');
    expect(seen.t ?? '').toBe('');
    expect(seen.r ?? '').toBe('');
    expect(seen.role).toBe('tenantplane_app');
  }

  it('after a committed withContext', async () => {
    const seen = await app.services.db.withContext(ctx, probe);
    expect(seen).toMatchObject({ u: userX, t: 'some-slug', r: 'req-1', role: 'tenantplane_app' });
    await expectClean(seen.pid);
  });

  it('after a withContext that threw', async () => {
    let pid = 0;
    await expect(
      app.services.db.withContext(ctx, async (tx) => {
        pid = (await probe(tx)).pid;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(pid).toBeGreaterThan(0);
    await expectClean(pid);
  });

  it('after a withContext whose SQL failed (aborted transaction)', async () => {
    let pid = 0;
    await expect(
      app.services.db.withContext(ctx, async (tx) => {
        pid = (await probe(tx)).pid;
        await tx.$queryRaw`select 1 / 0`;
      }),
    ).rejects.toThrow();
    await expectClean(pid);
  });

  it('after open() + rollback()', async () => {
    const open = await app.services.db.open(ctx);
    const seen = await probe(open.tx);
    expect(seen).toMatchObject({ u: userX, t: 'some-slug', role: 'tenantplane_app' });
    await open.rollback();
    await expectClean(seen.pid);
  });

  it('after open() + commit()', async () => {
    const open = await app.services.db.open(ctx);
    const seen = await probe(open.tx);
    await open.commit();
    await expectClean(seen.pid);
  });

  it('through HTTP: an anonymous request after an authenticated, narrowed one is anonymous', async () => {
    const narrowed = new Gql(app, owner.gql.token, { 'x-tenant': tenant.slug });
    expect((await narrowed.ok(`{ me { id } tenants { edges { node { slug } } } }`)).tenants.edges).toHaveLength(1);
    const anon = new Gql(app);
    expect((await anon.ok(`{ me { id } }`)).me).toBeNull();
    // And a different user right after sees only their own tenants, not the narrowed owner's.
    const stranger = await signUp(app, 'tx-stranger');
    expect((await stranger.gql.ok(`{ tenants { edges { node { slug } } } }`)).tenants.edges).toEqual([]);
  });
});
